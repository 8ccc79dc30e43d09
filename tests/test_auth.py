"""Login, logout, session cookie, CSRF and the create-admin command."""

from helpers import csrf_token_from, submit_login


def test_login_page_is_japanese_and_protected_pages_redirect_to_it(client, users):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.location
    page = client.get("/login").get_data(as_text=True)
    assert "ログイン" in page and "ユーザ名" in page and "パスワード" in page


def test_wrong_password_shows_japanese_error_and_stays_logged_out(client, users):
    response = submit_login(client, "admin", "nope")
    assert response.status_code == 200
    assert "ユーザ名またはパスワードが正しくありません。" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_sets_httponly_samesite_session_cookie(client, users):
    response = submit_login(client, "admin")
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_login_redirects_only_to_local_next(client, users):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=https://evil.example/", data={"username": "admin", "password": "Tokyo-pass-2026", "csrf_token": token}
    )
    assert response.location == "/"


def test_login_form_without_csrf_token_is_refused(client, users):
    response = client.post("/login", data={"username": "admin", "password": "Tokyo-pass-2026"})
    assert response.status_code == 400
    assert "再読み込み" in response.get_data(as_text=True)


def test_logout_is_a_post_and_ends_the_session(users, login):
    admin = login("admin")
    assert admin.get("/logout").status_code == 405
    assert admin.post("/logout").status_code == 302
    assert admin.get("/").status_code == 302


def test_password_is_stored_hashed(app, users):
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        user = db.session.get(User, users["admin"])
        assert "Tokyo-pass-2026" not in user.password_hash
        assert user.check_password("Tokyo-pass-2026")


def test_create_admin_command_creates_an_administrator(app):
    from webapp.auth.operations import find_user

    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "boss", "--email", "boss@example.jp"], input="long-password-1\nlong-password-1\n")
    assert result.exit_code == 0, result.output
    assert "管理者「boss」を作成しました。" in result.output
    with app.app_context():
        user = find_user("boss")
        assert user.is_admin and user.check_password("long-password-1")
        assert "long-password-1" not in result.output


def test_create_admin_refuses_short_password_and_duplicate(app, users):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "boss"], input="short\nshort\n")
    assert result.exit_code != 0
    assert "10文字以上" in result.output
    result = runner.invoke(args=["create-admin", "admin"], input="long-password-1\nlong-password-1\n")
    assert result.exit_code != 0
    assert "既に使われています" in result.output


def test_secret_key_is_generated_once_and_kept_in_instance_folder(tmp_path, monkeypatch):
    from webapp.config import load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config(tmp_path)["SECRET_KEY"]
    second = load_config(tmp_path)["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
