"""Report mails: an outbox table (always) and SMTP delivery (when MAIL_SERVER is set)."""
