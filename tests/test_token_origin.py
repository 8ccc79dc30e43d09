"""The app's side of the token's safety: the stored token follows the origin it was entered for (on save, in
接続テスト, in runs), redirects end runs and 接続テスト without being followed, production refuses internal
addresses unless allowed (MEISAI_ALLOWED_HOSTS), and every 接続テスト is in the audit log."""

from __future__ import annotations

import re

import pytest
from local_servers import (
    REDIRECT_BODY,
    REDIRECT_MESSAGE,
    RawListener,
    RecordingServer,
    RedirectServer,
    Resolver,
)
from run_helpers import CUSTOMER_MENU, CUSTOMER_SETTING, execute, latest_run, run_url, setting_named

from webapp.core.audit import AuditEntry
from webapp.extensions import db
from webapp.integrations.models import IntegrationSetting
from webapp.meisai import origin_of
from webapp.runs.models import CallStatus

TOKEN = "tok-ORIGIN-SECRET-0123456789abcdef"
ORIGIN_CHANGED = "URLの接続先が変わったため、APIトークンを入力し直してください。"
HTMX = {"HX-Request": "true"}


def url(s, tail=""):
    return f"/dbs/{s['database']}/integrations{tail}"


def form(**overrides):
    data = {"name": "顧客を送る", "url": "https://acme.eco-serv.jp/acme/", "token": TOKEN, "data_kind": "customer",
            "report_mail": "0", "overwrite_in_use": "0", "overwrite_blank": "0", "action": "save"}
    data.update(overrides)
    return data


def stored(app) -> IntegrationSetting:
    with app.app_context():
        setting = db.session.query(IntegrationSetting).order_by(IntegrationSetting.id.desc()).first()
        db.session.expunge(setting)
        return setting


def token_row(body: str) -> str:
    """The APIトークン form row of a rendered settings form."""
    match = re.search(r'<div class="form-row[^"]*">\s*<label for="token">.*?</div>', body, flags=re.S)
    assert match, "no APIトークン row"
    return match.group(0)


def connection_tests(app) -> list[AuditEntry]:
    with app.app_context():
        entries = db.session.query(AuditEntry).filter_by(action="connection_test").order_by(AuditEntry.id).all()
        for entry in entries:
            db.session.expunge(entry)
        return entries


class Listeners(list):
    def __call__(self, host: str = "127.0.0.1") -> RawListener:
        self.append(RawListener(host))
        return self[-1]


def point_customer_setting_at(app, base_url: str) -> None:
    """The demo's customer integration, with a token entered for ``base_url``."""
    with app.app_context():
        setting = setting_named(CUSTOMER_SETTING)
        setting.base_url = base_url
        setting.token_origin = origin_of(base_url)
        db.session.commit()


def start_customer_run(app, login):
    user = login("user")
    assert user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={}, headers=HTMX).status_code == 200
    return user


@pytest.fixture
def listeners():
    """Start bare TCP listeners (``listeners()``); all of them are the fixture's list."""
    started = Listeners()
    yield started
    for server in started:
        server.stop()


# --- 3. the stored token follows its origin -----------------------------------------------------------


@pytest.mark.parametrize("change", ["port", "host", "scheme"])
def test_connection_test_with_a_blank_token_never_sends_the_stored_one_to_another_origin(
        app, login, sample, listeners, change):
    first = listeners()
    editor = login("editor")
    assert editor.post(url(sample, "/new"), data=form(url=f"http://127.0.0.1:{first.port}/demo/")).status_code == 302
    other = {"port": lambda: f"http://127.0.0.1:{listeners().port}/demo/",
             "host": lambda: f"http://127.0.0.2:{listeners('127.0.0.2').port}/demo/",
             "scheme": lambda: f"https://127.0.0.1:{first.port}/demo/"}[change]()
    body = editor.post(url(sample, "/connection-test"), data={"url": other, "token": "", "setting_id": stored(app).id},
                       headers=HTMX).get_data(as_text=True)
    assert ORIGIN_CHANGED in body and "flash-error" in body
    assert [server.connections_so_far() for server in listeners] == [[]] * len(listeners)


def test_connection_test_with_a_typed_token_may_try_another_origin(app, login, sample, emulator):
    editor = login("editor")
    editor.post(url(sample, "/new"), data=form(url="https://acme.eco-serv.jp/acme/"))
    body = editor.post(url(sample, "/connection-test"),
                       data={"url": emulator.base_url, "token": emulator.token, "setting_id": stored(app).id},
                       headers=HTMX).get_data(as_text=True)
    assert "接続に成功しました" in body


def test_connection_test_with_a_blank_token_uses_the_stored_one_on_the_same_origin(app, login, sample, emulator):
    editor = login("editor")
    # Entered for the emulator's origin with another account path: the same scheme, host and port.
    editor.post(url(sample, "/new"), data=form(url=emulator.root_url + "someone-else/", token=emulator.token))
    body = editor.post(url(sample, "/connection-test"),
                       data={"url": emulator.base_url, "token": "", "setting_id": stored(app).id},
                       headers=HTMX).get_data(as_text=True)
    assert "接続に成功しました" in body


def test_saving_a_new_origin_with_a_blank_token_is_refused_at_the_token_field(app, login, sample):
    editor = login("editor")
    editor.post(url(sample, "/new"), data=form())
    before = stored(app)
    edit = url(sample, f"/{before.id}/edit")
    response = editor.post(edit, data=form(url="https://evil.example.com/acme/", token=""))
    assert response.status_code == 200
    row = token_row(response.get_data(as_text=True))
    assert "has-error" in row and ORIGIN_CHANGED in row
    after = stored(app)
    assert (after.base_url, after.token_encrypted, after.token_origin) == (
        before.base_url, before.token_encrypted, "https://acme.eco-serv.jp:443")
    # With the token typed again, the new origin is saved together with it.
    assert editor.post(edit, data=form(url="https://other.eco-serv.jp/acme/", token="tok-NEW-0123456789abcdef")
                       ).status_code == 302
    assert stored(app).token_origin == "https://other.eco-serv.jp:443"


@pytest.mark.parametrize("new_url", ["https://acme.eco-serv.jp/another-account/", "https://ACME.eco-serv.jp:443/acme/"])
def test_the_same_origin_keeps_the_stored_token(app, login, sample, new_url):
    editor = login("editor")
    editor.post(url(sample, "/new"), data=form())
    before = stored(app)
    assert editor.post(url(sample, f"/{before.id}/edit"), data=form(url=new_url, token="")).status_code == 302
    assert stored(app).token_encrypted == before.token_encrypted


def test_a_run_never_sends_the_token_to_a_url_it_was_not_entered_for(app, demo, login):
    """Defence in depth: a URL changed behind the form's back (here directly in the database) is not used."""
    elsewhere = RecordingServer()
    try:
        with app.app_context():
            setting_named(CUSTOMER_SETTING).base_url = f"{elsewhere.root}demo/"
            db.session.commit()
        start_customer_run(app, login)
        with app.app_context():
            run = execute(latest_run().id)
            assert run.status == "error"
            assert "APIトークンを入力し直してください" in run.error_message
    finally:
        elsewhere.stop()
    assert elsewhere.requests == []


# --- 1. redirects in runs and 接続テスト -----------------------------------------------------------------


def test_a_run_stops_at_a_redirect_sends_nothing_further_and_keeps_no_body(app, demo, login):
    target = RecordingServer()
    redirect = RedirectServer(307, f"{target.root}demo/")
    try:
        point_customer_setting_at(app, f"{redirect.root}demo/")
        user = start_customer_run(app, login)
        with app.app_context():
            run = execute(latest_run().id)
            run_id = run.id
            assert run.status == "error"
            call = run.calls[0]
            assert call.status == CallStatus.FAILED and call.error_message == REDIRECT_MESSAGE
            assert [x["response_text"] for x in call.exchanges] == [None]
            assert REDIRECT_BODY not in str(call.exchanges)
        detail = user.get(f"/runs/{run_id}").get_data(as_text=True)
    finally:
        redirect.stop()
        target.stop()
    assert REDIRECT_MESSAGE in detail and REDIRECT_BODY not in detail
    assert target.requests == [] and redirect.hits == 1


def test_connection_test_does_not_follow_a_redirect(login, sample):
    target = RecordingServer()
    redirect = RedirectServer(302, f"{target.root}demo/")
    try:
        body = login("editor").post(url(sample, "/connection-test"), data={"url": f"{redirect.root}demo/", "token": TOKEN},
                                    headers=HTMX).get_data(as_text=True)
    finally:
        redirect.stop()
        target.stop()
    assert REDIRECT_MESSAGE in body and REDIRECT_BODY not in body
    assert target.requests == []


# --- 接続テスト in the audit log -----------------------------------------------------------------------


def test_each_connection_test_is_audited_without_the_token(app, login, sample, emulator, users):
    editor = login("editor")
    editor.post(url(sample, "/connection-test"), data={"url": emulator.base_url, "token": emulator.token,
                                                       "name": "新しい連携"}, headers=HTMX)
    editor.post(url(sample, "/new"), data=form(url=emulator.base_url, token=emulator.token))
    setting = stored(app)
    editor.post(url(sample, "/connection-test"), data={"url": emulator.base_url, "token": "wrong-token-0123456789",
                                                       "setting_id": setting.id}, headers=HTMX)
    first, second = connection_tests(app)
    origin = origin_of(emulator.base_url)
    assert (first.user_id, first.target_id, first.target_label) == (users["editor"], None, "新しい連携")
    assert first.changes == {"接続先": ["", origin], "結果": ["", "成功"]}
    assert (second.target_id, second.target_label) == (setting.id, "顧客を送る")
    assert second.changes["接続先"] == ["", origin] and second.changes["結果"][1].startswith("失敗: APIトークン")
    assert emulator.token not in str(first.changes) + str(second.changes)
    assert "wrong-token" not in str(second.changes)
    page = login("admin").get("/admin/audit").get_data(as_text=True)
    assert "接続テスト" in page and origin in page


def test_a_refused_connection_test_is_audited_too(app, login, sample, listeners):
    first, second = listeners(), listeners()
    editor = login("editor")
    editor.post(url(sample, "/new"), data=form(url=f"http://127.0.0.1:{first.port}/demo/"))
    editor.post(url(sample, "/connection-test"),
                data={"url": f"http://127.0.0.1:{second.port}/demo/", "token": "", "setting_id": stored(app).id},
                headers=HTMX)
    (entry,) = connection_tests(app)
    assert entry.changes == {"接続先": ["", f"http://127.0.0.1:{second.port}"], "結果": ["", f"失敗: {ORIGIN_CHANGED}"]}


# --- 2. production: internal addresses ---------------------------------------------------------------------


@pytest.fixture
def production(app):
    app.config["APP_ENV"] = "production"
    return app


@pytest.mark.parametrize("answer,typed", [
    ("10.0.0.5", "https://meisai.intra.example/acme/"),
    ("169.254.169.254", "https://meisai.intra.example/acme/"),
    ("fd00::7", "https://meisai.intra.example/acme/"),
    (None, "https://127.0.0.1/acme/"),
    (None, "https://[::1]/acme/"),
    (None, "https://localhost/acme/"),
])
def test_production_refuses_a_url_that_names_an_internal_address(production, login, sample, monkeypatch, answer, typed):
    if answer:
        Resolver(monkeypatch, "meisai.intra.example", [answer])
    response = login("editor").post(url(sample, "/new"), data=form(url=typed))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "内部アドレス" in body and "MEISAI_ALLOWED_HOSTS" in body
    with production.app_context():
        assert db.session.query(IntegrationSetting).count() == 0


def test_production_accepts_an_internal_host_the_operator_allows(production, login, sample, monkeypatch):
    production.config["MEISAI_ALLOWED_HOSTS"] = ["meisai.intra.example"]
    Resolver(monkeypatch, "meisai.intra.example", ["10.0.0.5"])
    assert login("editor").post(url(sample, "/new"), data=form(url="https://meisai.intra.example/acme/")
                                ).status_code == 302


def test_production_connection_test_cannot_be_rebound_to_an_internal_address(production, login, sample, monkeypatch,
                                                                             listeners):
    """The form's lookup says public; the connection's lookup says loopback: the connected peer is refused."""
    listener = listeners()
    Resolver(monkeypatch, "meisai-rebind.example", ["93.184.216.34", "127.0.0.1"])
    body = login("editor").post(url(sample, "/connection-test"),
                                data={"url": f"https://meisai-rebind.example:{listener.port}/demo/", "token": TOKEN},
                                headers=HTMX).get_data(as_text=True)
    assert "内部アドレス（127.0.0.1）" in body
    assert listener.connections_so_far() == [b""]  # connected, then closed before sending a byte


def test_production_run_refuses_an_internal_peer_and_sends_nothing(app, demo, login, monkeypatch, listeners):
    listener = listeners()
    point_customer_setting_at(app, f"https://meisai.example:{listener.port}/demo/")
    start_customer_run(app, login)
    app.config["APP_ENV"] = "production"
    Resolver(monkeypatch, "meisai.example", ["127.0.0.1"])
    with app.app_context():
        run = execute(latest_run().id)
        assert run.status == "error"
        assert "内部アドレス（127.0.0.1）" in run.calls[0].error_message
        assert len(run.calls[0].exchanges) == 1  # refused once, not retried
    assert listener.connections_so_far() == [b""]


def test_production_run_of_a_plain_http_setting_is_refused_without_a_crash(app, demo, login):
    start_customer_run(app, login)
    app.config["APP_ENV"] = "production"  # the demo's settings use the emulator's http:// URL
    with app.app_context():
        run = execute(latest_run().id)
        assert run.status == "error" and "https://" in run.error_message
