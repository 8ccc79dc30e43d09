"""Typed errors of document generation; their messages are Japanese and shown to the user as they are."""

from ..core.errors import DomainError


class DocumentError(DomainError):
    """A PDF cannot be generated: a missing font, a broken template file …"""


class TemplateError(DocumentError):
    """A document template file is missing or invalid."""
