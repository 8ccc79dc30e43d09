"""Sessions end when they should (issue 14, item 5) and logins are checked evenly and audited (item 6).

The replay tests copy the real session cookie a logged-in browser holds and present it again from a fresh
client, as someone who copied it would.
"""

from __future__ import annotations

import pytest
from helpers import PASSWORDS, LoggedInClient, free_port, submit_login

from webapp.auth.models import User
from webapp.extensions import db


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(app, cookie_value: str):
    """A fresh client presenting a copied session cookie; returns its answer to the home page."""
    thief = app.test_client()
    thief.set_cookie("session", cookie_value)
    return thief.get("/")


def assert_login_page(response):
    assert response.status_code == 302 and "/login" in response.location


def test_a_cookie_copied_before_logout_gets_the_login_page_afterwards(app, users, login):
    plain = login("plain")
    copied = session_cookie(plain.client)
    assert replay(app, copied).status_code == 200  # the copy really is a working login
    assert plain.post("/logout").status_code == 302
    assert_login_page(replay(app, copied))
    assert_login_page(plain.get("/"))


def test_logout_ends_only_that_session(app, users, login):
    office, laptop = login("plain"), login("plain")
    office.post("/logout")
    assert laptop.get("/").status_code == 200


def test_a_login_gets_a_new_session_id(app, users):
    client = app.test_client()
    client.get("/login")
    before = session_cookie(client)
    submit_login(client, "plain")
    assert session_cookie(client) != before
    # A session id planted before the login (fixation) does not become a logged-in session.
    assert_login_page(replay(app, before))


def test_the_cookie_holds_only_a_random_id_and_the_session_lives_in_redis(app, users, login):
    from redis import Redis

    plain = login("plain")
    value = session_cookie(plain.client)
    assert "." not in value and len(value) >= 40  # not a signed payload
    prefix = app.config["SESSION_KEY_PREFIX"]
    assert Redis.from_url(app.config["REDIS_URL"]).ttl(prefix + value) > 0


def test_a_password_change_ends_every_session_of_the_user(app, users, login):
    from webapp.auth.operations import change_password

    office, laptop, other = login("plain"), login("plain"), login("editor")
    copied = session_cookie(office.client)
    with app.app_context():
        change_password(db.session.get(User, office_user_id(app)), "Kobe-harbour-2027")
        db.session.commit()
    assert_login_page(replay(app, copied))
    assert_login_page(laptop.get("/"))
    assert other.get("/").status_code == 200
    # The new password works at once.
    assert submit_login(app.test_client(), "plain", "Kobe-harbour-2027").status_code == 302


def office_user_id(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(User.id).filter_by(username="plain")).scalar_one()


def test_set_password_command_ends_the_sessions_and_shows_the_rules(app, users, login):
    plain = login("plain")
    copied = session_cookie(plain.client)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["set-password", "plain"], input="Kobe-harbour-2027\nKobe-harbour-2027\n")
    assert result.exit_code == 0, result.output
    assert "10文字以上で、英字と数字の両方を含めてください" in result.output  # in the prompt, before typing
    assert "Kobe-harbour-2027" not in result.output
    assert_login_page(replay(app, copied))
    assert runner.invoke(args=["set-password", "nobody"], input="Kobe-harbour-2027\nKobe-harbour-2027\n").exit_code != 0


def test_deactivation_ends_sessions_through_the_revoke_mechanism(app, users, login):
    """User management (deactivation) comes later; it calls revoke_sessions, and an inactive user is never
    loaded from a session even without it."""
    from webapp.auth.sessions import revoke_sessions

    plain, editor = login("plain"), login("editor")
    plain_cookie, editor_cookie = session_cookie(plain.client), session_cookie(editor.client)
    with app.app_context():
        user = db.session.get(User, office_user_id(app))
        user.is_active_user = False
        revoke_sessions(user)
        db.session.commit()
        other = db.session.execute(db.select(User).filter_by(username="editor")).scalar_one()
        other.is_active_user = False  # deactivated without revoking: still refused
        db.session.commit()
    assert_login_page(replay(app, plain_cookie))
    assert_login_page(replay(app, editor_cookie))


def test_administrator_ends_all_sessions_of_a_user(app, users, login):
    from webapp.core.audit import AuditEntry

    office, laptop = login("plain"), login("plain")
    copied = session_cookie(office.client)
    admin = login("admin")
    user_id = office_user_id(app)
    page = admin.get(f"/admin/permissions/{user_id}").get_data(as_text=True)
    assert "全セッションを終了" in page and f'action="/admin/permissions/{user_id}/end-sessions"' in page
    response = admin.post(f"/admin/permissions/{user_id}/end-sessions")
    assert response.status_code == 302 and response.location.endswith(f"/admin/permissions/{user_id}")
    assert "すべてのセッションを終了しました" in admin.get(response.location).get_data(as_text=True)
    assert_login_page(replay(app, copied))
    assert_login_page(laptop.get("/"))
    assert admin.get("/").status_code == 200  # the administrator's own session is untouched
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).filter_by(action="end_sessions")).scalar_one()
        assert entry.target_label == "plain" and entry.target_id == user_id and entry.user.username == "admin"
    # The user simply logs in again.
    assert LoggedInClient(app.test_client(), "plain").get("/").status_code == 200


def test_ending_all_sessions_needs_an_administrator_and_a_csrf_token(app, users, login):
    user_id = office_user_id(app)
    editor = login("editor")
    assert editor.post(f"/admin/permissions/{user_id}/end-sessions").status_code == 403
    admin = login("admin")
    assert admin.client.post(f"/admin/permissions/{user_id}/end-sessions").status_code == 400  # no token
    assert admin.get(f"/admin/permissions/{user_id}/end-sessions").status_code == 405
    assert admin.post("/admin/permissions/99999/end-sessions").status_code == 404
    with app.app_context():
        assert db.session.get(User, user_id).session_version == 0


def test_an_administrator_ending_their_own_sessions_is_logged_out(app, users, login):
    admin = login("admin")
    admin_id = db_id(app, "admin")
    response = admin.post(f"/admin/permissions/{admin_id}/end-sessions")
    assert response.status_code == 302 and "/login" in response.location
    assert "もう一度ログインしてください" in admin.get("/login").get_data(as_text=True)
    assert_login_page(admin.get("/"))


def db_id(app, username: str) -> int:
    with app.app_context():
        return db.session.execute(db.select(User.id).filter_by(username=username)).scalar_one()


def test_without_redis_pages_answer_503_in_japanese(tmp_path, app):
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from webapp import create_app

    down = create_app({
        **{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "FILES_DIR", "PASSWORD_HASH_METHOD", "RATELIMIT_STORAGE_URI")},
        "TESTING": True, "APP_ENV": "test", "SECRET_KEY": "test-secret-key-not-used-elsewhere",
        "SESSION_REDIS": Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 1)),
    }, instance_path=str(tmp_path / "down"))
    client = down.test_client()
    page = client.get("/login")
    assert page.status_code == 503
    assert "Redis" in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)
    client.set_cookie("session", "a" * 43)
    response = client.get("/")
    assert response.status_code == 503 and "ログイン状態を保存するサーバー" in response.get_data(as_text=True)
    assert client.get("/healthz").status_code in (200, 503)  # answered by the health check itself
    assert "Redis" not in client.get("/healthz").get_data(as_text=True)


# ---- item 6: logins ------------------------------------------------------------------------------------


@pytest.fixture
def hash_checks(monkeypatch):
    """Every password hash checked, as (hash method, hash) pairs."""
    import webapp.auth.models as models

    checks = []
    real = models.check_password_hash

    def spy(password_hash, password):
        checks.append((password_hash.split("$", 1)[0], password_hash))
        return real(password_hash, password)

    monkeypatch.setattr(models, "check_password_hash", spy)
    return checks


def test_an_unknown_user_costs_the_same_hash_check_as_a_wrong_password(app, users, hash_checks):
    wrong = submit_login(app.test_client(), "plain", "wrong-password-1")
    unknown = submit_login(app.test_client(), "nobody-here", "wrong-password-1")
    assert wrong.status_code == unknown.status_code == 200
    message = "ユーザ名またはパスワードが正しくありません。"
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert len(hash_checks) == 2, "one hash check per attempt, for a known and an unknown user alike"
    (real_method, real_hash), (dummy_method, dummy_hash) = hash_checks
    assert dummy_method == real_method  # the same algorithm and cost
    with app.app_context():
        assert db.session.get(User, users["plain"]).password_hash == real_hash != dummy_hash


def test_an_inactive_user_is_refused_after_the_same_hash_check(app, users, hash_checks):
    with app.app_context():
        db.session.get(User, users["plain"]).is_active_user = False
        db.session.commit()
    response = submit_login(app.test_client(), "plain", PASSWORDS["plain"])
    assert response.status_code == 200 and "ユーザ名またはパスワードが正しくありません。" in response.get_data(as_text=True)
    assert len(hash_checks) == 1


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failures_from_many_addresses_lock_the_account(app, users):
    limit = int(app.config.get("LOGIN_ACCOUNT_LIMIT", "10 per 15 minutes").split()[0])
    # Each address stays far below the per-address limits.
    for n in range(limit):
        assert submit_login(from_address(app, f"203.0.113.{n + 1}"), "plain", "wrong-password-1").status_code == 200
    locked = submit_login(from_address(app, "198.51.100.7"), "plain", PASSWORDS["plain"])
    assert locked.status_code == 429
    assert "ログインに続けて失敗したため" in locked.get_data(as_text=True)
    # Another account is not affected, from any of those addresses.
    assert submit_login(from_address(app, "203.0.113.1"), "admin", PASSWORDS["admin"]).status_code == 302


def test_login_success_and_failure_are_audited_with_user_name_and_address(app, users):
    from webapp.core.audit import AuditEntry

    assert submit_login(from_address(app, "192.0.2.10"), "plain", "wrong-password-1").status_code == 200
    assert submit_login(from_address(app, "192.0.2.11"), "ghost", "wrong-password-1").status_code == 200
    assert submit_login(from_address(app, "192.0.2.12"), "Plain", PASSWORDS["plain"]).status_code == 302
    with app.app_context():
        # The fixture's user creations are audited too: the login entries are the ones looked at here.
        entries = db.session.execute(db.select(AuditEntry).where(AuditEntry.action.in_(["login", "login_failed"]))
                                     .order_by(AuditEntry.id)).scalars().all()
        seen = [(e.action, e.target_label, e.user_id, e.changes["アドレス"][1]) for e in entries]
    assert seen == [("login_failed", "plain", users["plain"], "192.0.2.10"),
                    ("login_failed", "ghost", None, "192.0.2.11"),
                    ("login", "Plain", users["plain"], "192.0.2.12")]
    page = LoggedInClient(app.test_client(), "admin").get("/admin/audit").get_data(as_text=True)
    assert "ログイン失敗" in page and "ghost" in page and "192.0.2.11" in page
    assert "wrong-password-1" not in page
