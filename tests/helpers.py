"""Test helpers shared by modules: CSRF tokens from pages, a client that logs in like a browser."""

from __future__ import annotations

import re

PASSWORDS = {"admin": "Tokyo-pass-2026", "editor": "Osaka-pass-2026", "plain": "Nagoya-pass-2026",
             "only_db": "only-db-pass-1", "only_sys": "only-sys-pass-1", "user": "user", "keiri": "keiri"}


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
