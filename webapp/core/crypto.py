"""Encryption at rest of the 楽楽明細 APIトークン (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from configuration: TOKEN_ENCRYPTION_KEY when set (a Fernet key), otherwise one derived from
SECRET_KEY with HKDF. Back up whichever you use: without it the stored tokens cannot be read, and each
setting then asks for its token again (要再入力) — nothing else is lost.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class TokenUnreadable(Exception):
    """The stored token was encrypted with another key (the configuration changed)."""


def _fernet() -> Fernet:
    configured = current_app.config.get("TOKEN_ENCRYPTION_KEY")
    if configured:
        return Fernet(configured.encode() if isinstance(configured, str) else configured)
    secret = current_app.config["SECRET_KEY"]
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"meisai-api-token").derive(secret_bytes)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise TokenUnreadable("stored token cannot be decrypted with the configured key") from exc
