"""Production refuses a placeholder SECRET_KEY, sends Secure cookies by default, and keeps the files the app
writes private to its user whatever the umask (issue 14, item 8)."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TEST_REDIS_URL
from helpers import submit_login

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "9f2c4e7a1b8d3f6e0a5c9b2d7e4f1a8c"


def env_example_value(name: str) -> str:
    text = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    return re.search(rf"^{name}=(.*)$", text, flags=re.MULTILINE).group(1)


def make_app(tmp_path, **config):
    from webapp import create_app

    settings = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
                "REDIS_URL": TEST_REDIS_URL, "RATELIMIT_STORAGE_URI": TEST_REDIS_URL,
                "FILES_DIR": str(tmp_path / "files"), "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                "RQ_QUEUE": f"test-prod-{os.getpid()}"}
    settings.update(config)
    return create_app(settings, instance_path=str(tmp_path / "instance"))


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)


@pytest.mark.parametrize("key,reason", [
    (None, "placeholder"),  # the value of deploy/env.example
    ("change_me_change_me_change_me_change_me", "placeholder"),
    ("s3cr3t-2026", "too short"),
    ("a" * 40, "too few different characters"),
])
def test_production_refuses_a_placeholder_or_short_secret_key(tmp_path, production_env, key, reason):
    from webapp.config import ConfigurationError

    key = key or env_example_value("SECRET_KEY")
    with pytest.raises(ConfigurationError) as refused:
        make_app(tmp_path, SECRET_KEY=key)
    message = str(refused.value)
    assert message.startswith("SECRET_KEY ") and reason in message and "secrets.token_hex" in message
    if reason != "placeholder":
        assert key not in message  # a real (if weak) key is never printed


def test_the_refusal_is_a_clear_message_when_a_process_starts(tmp_path):
    env = dict(os.environ, APP_ENV="production", SECRET_KEY=env_example_value("SECRET_KEY"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", REDIS_URL=TEST_REDIS_URL)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "routes"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ConfigurationError: SECRET_KEY is a placeholder (such as CHANGE-ME of deploy/env.example)" in result.stderr


def test_production_starts_with_a_real_key_or_a_generated_one(tmp_path, production_env):
    assert make_app(tmp_path / "a", SECRET_KEY=GOOD_KEY).config["SECRET_KEY"] == GOOD_KEY
    generated = make_app(tmp_path / "b")  # unset: generated into instance/secret_key
    assert len(generated.config["SECRET_KEY"]) == 64


def test_development_keeps_working_with_any_key(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    app = make_app(tmp_path, SECRET_KEY="dev")
    assert app.config["SESSION_COOKIE_SECURE"] is False


def login_cookies(app) -> list[str]:
    from webapp.auth.operations import create_user
    from webapp.extensions import db

    with app.app_context():
        db.create_all()
        create_user("admin", "Tokyo-pass-2026", is_admin=True)
        db.session.commit()
    client = app.test_client()
    page = client.get("/login")
    response = submit_login(client, "admin")
    assert response.status_code == 302
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")], page


def test_production_cookies_are_secure_by_default(tmp_path, production_env):
    app = make_app(tmp_path, SECRET_KEY=GOOD_KEY)
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    (cookie,), page = login_cookies(app)
    assert "; Secure" in cookie
    # Over plain http the login page says why a browser would not stay logged in.
    assert "https で開いてください" in page.get_data(as_text=True)


def test_plain_http_only_when_explicitly_configured(tmp_path, production_env, monkeypatch):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    app = make_app(tmp_path, SECRET_KEY=GOOD_KEY)
    (cookie,), page = login_cookies(app)
    assert "Secure" not in cookie
    assert "https で開いてください" not in page.get_data(as_text=True)


def test_make_prod_serves_plain_http_on_loopback_with_cookies_that_work_there(monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import prodrun
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.setattr(prodrun.devrun, "demo_token", lambda: "token")
    env = prodrun.build_env()
    assert env["GUNICORN_BIND"].startswith("127.0.0.1:") and env["SESSION_COOKIE_SECURE"] == "0"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(path: Path) -> None:
    assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"


@pytest.fixture
def permissive_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_files_the_app_writes_are_private_whatever_the_umask(tmp_path, monkeypatch, permissive_umask):
    from flask_migrate import upgrade
    from werkzeug.datastructures import FileStorage

    from webapp.backup.operations import create_backup
    from webapp.databases.operations import store_upload
    from webapp.extensions import db

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("APP_ENV", "test")
    app = make_app(tmp_path)
    instance = Path(app.instance_path)
    with app.app_context():
        upgrade()  # creates the SQLite file
        db.session.execute(db.text("CREATE TABLE probe (x INTEGER)"))  # a write: the -wal file appears
        db.session.commit()
        assert_private(tmp_path / "prod.sqlite3-wal")  # while a connection holds it open
        record, target = SimpleNamespace(database_id=1, id=2), SimpleNamespace(id=3)
        value = store_upload(record, target, FileStorage(io.BytesIO(b"%PDF-1.4 invoice"), filename="請求書.pdf"))
        create_backup(tmp_path / "backups" / "meisai.tar.gz")
        db.engine.dispose()
    database = tmp_path / "prod.sqlite3"
    files = Path(app.config["FILES_DIR"])
    for path in (instance, instance / "secret_key", database, files, files / value["path"], *(files / value["path"]).parents[:4],
                 tmp_path / "backups", tmp_path / "backups" / "meisai.tar.gz"):
        assert_private(path)


def test_files_left_readable_by_an_older_version_are_made_private_on_start(tmp_path, monkeypatch, permissive_umask):
    instance, files = tmp_path / "instance", tmp_path / "files"
    for folder in (instance, files):
        folder.mkdir(mode=0o777)
    database = tmp_path / "prod.sqlite3"
    database.touch(mode=0o666)
    (instance / "secret_key").write_text(GOOD_KEY)
    (instance / "secret_key").chmod(0o644)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("APP_ENV", "test")
    make_app(tmp_path)
    for path in (instance, files, database, instance / "secret_key"):
        assert_private(path)
    assert mode(database) == 0o600 and mode(instance) == 0o700  # the owner keeps its access
