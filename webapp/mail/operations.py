"""Queue a mail in the outbox (same transaction as what caused it), then deliver it over SMTP if configured."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from ..core.clock import utcnow
from ..core.text import one_line
from ..extensions import db
from .models import OutboxMail

log = logging.getLogger(__name__)


def queue_mail(recipients: list[str], subject: str, body: str, run_id: int | None = None) -> OutboxMail:
    mail = OutboxMail(recipients=recipients, subject=subject, body=body, run_id=run_id, status="pending")
    db.session.add(mail)
    return mail


def deliver(mail: OutboxMail) -> None:
    """Send one outbox mail; the outcome is stored on the row. Never raises for the mail's data or SMTP trouble:
    a mail that cannot be built or sent is marked failed with the reason, never left pending."""
    config = current_app.config
    if not mail.recipients:
        mail.status, mail.error = "failed", "送信先のメールアドレスがありません。ユーザ設定を確認してください。"
    elif not config.get("MAIL_SERVER"):
        mail.status = "stored"
    else:
        try:
            message = _message_of(mail, config)
        except Exception as exc:  # any value the message cannot hold ends here, with the mail marked
            log.warning("mail %s not built: %s", mail.id, type(exc).__name__)
            mail.status, mail.error = "failed", f"メールを作成できませんでした({type(exc).__name__})"[:500]
        else:
            _send(mail, message, config)
    db.session.commit()


def _message_of(mail: OutboxMail, config) -> EmailMessage:
    """Header values come from names people typed: each is kept on one line (CR/LF would start a new header)."""
    message = EmailMessage()
    message["Subject"] = one_line(mail.subject)
    message["From"] = one_line(config["MAIL_FROM"])
    message["To"] = ", ".join(one_line(address) for address in mail.recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="meisai-renkei")
    message.set_content(mail.body, charset="utf-8")
    return message


def _send(mail: OutboxMail, message: EmailMessage, config) -> None:
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException, ValueError, UnicodeError) as exc:
        log.warning("mail %s not sent: %s", mail.id, type(exc).__name__)
        mail.status, mail.error = "failed", f"SMTP送信に失敗しました({type(exc).__name__})"[:500]
    else:
        mail.status, mail.sent_at = "sent", utcnow()
