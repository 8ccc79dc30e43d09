"""Test helpers shared by modules: CSRF tokens from pages, a client that logs in like a browser."""

from __future__ import annotations

import os
import re
from pathlib import Path

PASSWORDS = {"admin": "Tokyo-pass-2026", "editor": "Osaka-pass-2026", "plain": "Nagoya-pass-2026",
             "only_db": "only-db-pass-1", "only_sys": "only-sys-pass-1", "user": "user", "keiri": "keiri"}


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET_KEY = "test-secret-key-not-used-elsewhere"


def app_config(database_url: str, root: Path, **overrides) -> dict:
    """The configuration of every test app: its database, FILES_DIR under `root`, the test Redis, fast runs."""
    config = {
        "TESTING": True,
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "FILES_DIR": str(Path(root) / "files"),
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Runs poll and retry fast against the local emulator.
        "RUN_POLL_FIRST_INTERVAL": 0.05,
        "RUN_POLL_MAX_INTERVAL": 0.2,
        "RUN_POLL_TIMEOUT": 30,
        "RUN_RETRY_BASE_DELAY": 0.05,
        "RUN_RETRY_TOTAL_SECONDS": 5,
        "RQ_QUEUE": f"test-{os.getpid()}",
        # Login throttling on the test Redis (its counts are cleared for every test).
        "RATELIMIT_STORAGE_URI": TEST_REDIS_URL,
    }
    config.update(overrides)
    return config


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


class LoggedInClient:
    """A test client that logs in through the real form and sends CSRF tokens like a browser."""

    def __init__(self, client, username, password=None):
        self.client = client
        self.username = username
        page = client.get("/login").get_data(as_text=True)
        response = client.post(
            "/login",
            data={"username": username, "password": password or PASSWORDS[username], "csrf_token": csrf_token_from(page)},
        )
        assert response.status_code == 302, f"login failed for {username}"
        self.csrf = csrf_token_from(client.get("/").get_data(as_text=True))

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, **kwargs)
