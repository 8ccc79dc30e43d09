"""Typed errors of document generation; their messages are Japanese and shown to the user as they are."""


class DocumentError(Exception):
    """A PDF cannot be generated: a missing font, a broken template file …"""


class TemplateError(DocumentError):
    """A document template file is missing or invalid."""
