"""Hardening: security headers, login throttling with a lockout message, session expiry, password rules."""

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from helpers import submit_login

from webapp.core.security import CONTENT_SECURITY_POLICY


def test_pages_carry_security_headers(client, users):
    response = client.get("/login")
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert len(headers["X-Request-ID"]) >= 8
    assert "Strict-Transport-Security" not in headers  # plain http here


def test_https_requests_get_hsts_and_secure_cookie_setting_is_honoured(app, client, users):
    app.config["SESSION_COOKIE_SECURE"] = True
    page = client.get("/login", base_url="https://localhost")
    assert "max-age" in page.headers["Strict-Transport-Security"]
    # Over https Flask-WTF also checks the Referer, which a browser sends for this same-origin form.
    response = submit_login(client, "admin", base_url="https://localhost", headers={"Referer": "https://localhost/login"})
    assert response.status_code == 302  # logged in: the cookie below is the logged-in session's
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "Secure" in cookie


def test_request_id_is_logged_with_each_request(client, users, caplog):
    caplog.set_level("INFO", logger="webapp.request")
    response = client.get("/login", headers={"X-Request-ID": "abc123def456"})
    assert response.headers["X-Request-ID"] == "abc123def456"
    assert any("rid=abc123def456" in r.getMessage() and "GET /login 200" in r.getMessage() for r in caplog.records)


def test_repeated_failures_lock_the_user_name_with_a_japanese_message(app, users):
    client = app.test_client()
    for _ in range(5):
        assert submit_login(client, "plain", "wrong-password-1").status_code == 200
    locked = submit_login(client, "plain", "Nagoya-pass-2026")  # even the right password waits now
    assert locked.status_code == 429
    body = locked.get_data(as_text=True)
    assert "ログインに続けて失敗したため" in body and "15分" in body
    # Another user from the same address is not locked out by it.
    assert submit_login(app.test_client(), "admin", "Tokyo-pass-2026").status_code == 302


def test_successful_logins_do_not_count_toward_the_lockout(app, users):
    for _ in range(7):
        assert submit_login(app.test_client(), "admin", "Tokyo-pass-2026").status_code == 302


def test_session_expires_after_the_configured_idle_time(app, users, monkeypatch, tmp_path):
    """Idle expiry is the Redis key's TTL, renewed by each request. Time is moved on for that key (its TTL
    lowered, then run out) instead of slept through."""
    from webapp.config import load_config

    monkeypatch.setenv("SESSION_HOURS", "2")
    app.config["PERMANENT_SESSION_LIFETIME"] = load_config(tmp_path)["PERMANENT_SESSION_LIFETIME"]
    lifetime = 2 * 3600
    client = app.test_client()
    response = submit_login(client, "admin")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert abs(expires - datetime.now(UTC) - timedelta(seconds=lifetime)) < timedelta(minutes=1)
    store = app.session_interface.client
    key = app.config["SESSION_KEY_PREFIX"] + client.get_cookie("session").value
    assert lifetime - 60 < store.ttl(key) <= lifetime

    store.expire(key, 30)  # 1 h 59 min 30 s idle: a page view now renews the whole idle time
    assert client.get("/").status_code == 200
    assert store.ttl(key) > lifetime - 60

    store.expireat(key, 0)  # two hours idle: Redis drops the session (the browser still sends its cookie)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    "password,message",
    [
        ("short1", "10文字以上"),
        ("onlyletters", "英字と数字の両方"),
        ("1234567890123", "英字と数字の両方"),
        ("tanaka-2026-x", "ユーザ名を含めないで"),
        ("password123", "よく使われるパスワード"),
    ],
)
def test_new_user_password_rules(app, users, login, password, message):
    from webapp.auth.models import User
    from webapp.extensions import db

    response = login("admin").post("/admin/users/new", data={
        "username": "tanaka", "password": password, "password_confirm": password})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(User).filter_by(username="tanaka").count() == 0


def test_a_good_password_creates_the_user(app, users, login):
    response = login("admin").post("/admin/users/new", data={
        "username": "tanaka", "display_name": "田中", "password": "Sakura-2026-blue", "password_confirm": "Sakura-2026-blue"})
    assert response.status_code == 302
