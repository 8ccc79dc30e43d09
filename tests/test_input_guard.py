"""Input that must never reach a 500 or be silently changed (issue 14, items 9–13).

Control characters in every text input and query parameter, ids beyond the database's integers in every URL and
query, CR/LF in names and in mail headers, more 明細 rows than allowed, and request log lines. The walking tests
visit every registered route (or every form of the demo's pages) with such input.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import browser_login
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    execute,
    latest_run,
    menu_named,
    run_url,
    setting_named,
)
from sqlalchemy import func, select

from webapp.extensions import db

NUL = "\x00"
HUGE = "99999999999999999999"  # beyond SQLite's 64-bit and PostgreSQL's integer
CONTROL = "制御文字(NULなど、画面に見えない特殊な文字)が含まれています"
ONE_LINE = "改行は入力できません(1行の項目です。タブも使えません)"
QUERY_REFUSED = "URLまたは検索条件に使えない文字"
SHOTS = Path(__file__).resolve().parent.parent / "test-results"


# ---- helpers ----------------------------------------------------------------------------------------------


class PostForms(HTMLParser):
    """The POST forms of a page as a browser would submit them: (name, value, kind) of every successful control."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form = None
        self._textarea = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = None
            if (a.get("method") or "get").lower() == "post":
                self._form = {"action": a.get("action") or "", "fields": []}
                self.forms.append(self._form)
            return
        if self._form is None or not a.get("name"):
            if tag == "option" and self._select is not None:
                self._option(a)
            return
        name, kind = a["name"], (a.get("type") or "text").lower()
        if tag == "input":
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form["fields"].append((name, a.get("value") or "on", kind))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._form["fields"].append((name, a.get("value") or "", kind))
        elif tag == "textarea":
            self._textarea = [name, ""]
        elif tag == "select":
            self._select = {"name": name, "first": None, "chosen": []}

    def _option(self, a):
        value = a.get("value") or ""
        if self._select["first"] is None:
            self._select["first"] = value
        if "selected" in a:
            self._select["chosen"].append(value)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._textarea is not None:
            if self._form is not None:
                self._form["fields"].append((self._textarea[0], self._textarea[1].removeprefix("\n"), "textarea"))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._select["chosen"] or ([self._select["first"]] if self._select["first"] is not None else [])
            if self._form is not None:
                self._form["fields"].extend((self._select["name"], value, "select") for value in chosen)
            self._select = None


def post_forms(html: str) -> list[dict]:
    parser = PostForms()
    parser.feed(html)
    return parser.forms


TEXT_KINDS = {"text", "search", "email", "password", "tel", "url", "date", "datetime-local", "time", "number",
              "textarea"}


def database_state(app) -> dict:
    """Every row of every table: a refused request must leave this unchanged."""
    with app.app_context():
        state = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table)).all()
            state[table.name] = sorted(repr(tuple(row)) for row in rows)
        db.session.rollback()
        return state


def record_count(app) -> int:
    from webapp.databases.models import Record

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Record))


def ids_of(app) -> dict[str, int]:
    """One existing object for each kind of id in the URL rules (the demo installation, after one run)."""
    from webapp.auth.models import User
    from webapp.databases.models import Database, Record
    from webapp.runs.models import RunCall

    with app.app_context():
        call = db.session.execute(select(RunCall).order_by(RunCall.id)).scalars().first()
        menu = menu_named(CUSTOMER_MENU)
        setting = setting_named(CUSTOMER_SETTING)
        database = db.session.get(Database, menu.database_id)
        record = db.session.execute(select(Record).where(Record.database_id == database.id)).scalars().first()
        invoices = menu_named(INVOICE_MENU)  # 明細 rows and a menu with filters
        invoice = db.session.execute(select(Record).where(Record.database_id == invoices.database_id)).scalars().first()
        return {"database_id": database.id, "field_id": database.fields[0].id, "menu_id": menu.id,
                "setting_id": setting.id, "record_id": record.id, "run_id": call.run_id, "index": call.index,
                "number": 0, "user_id": db.session.scalar(select(User.id).where(User.username == "user")),
                "invoice_database_id": invoices.database_id, "invoice_menu_id": invoices.id,
                "invoice_record_id": invoice.id}


@pytest.fixture
def installed(app, demo, login):
    """The demo installation with one finished run, and the administrator signed in."""
    user = login("user")
    response = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={},
                         headers={"HX-Request": "true", "HX-Target": "run-dialog"})
    assert response.status_code == 200
    with app.app_context():
        assert execute(latest_run().id).status == "completed"
    return login("admin")


def int_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if any(type(conv).__name__ == "BoundedIntConverter" or "Integer" in type(conv).__name__
                   for conv in rule._converters.values())]


def url_of(rule, values: dict) -> str:
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:int:)?{name}>", str(values[name]), url)
    return url


# ---- 9. control characters ---------------------------------------------------------------------------------


def record_post(sample, **values):
    """The sample DB's record form; 品名 and 数量 are its 明細 fields (first row)."""
    f = sample["fields"]
    data = {f"f{f['請求番号']}": "INV-0100", f"f{f['連携ステータス']}": "未連携"}
    for name, value in values.items():
        data[f"details-0-f{f[name]}" if name in ("品名", "数量") else f"f{f[name]}"] = value
    return data


def test_nul_in_a_record_is_refused_on_the_field_and_nothing_is_saved(app, login, sample):
    before = record_count(app)
    response = login("editor").post(f"/dbs/{sample['database']}/records/new",
                                    data=record_post(sample, 請求番号="INV\x00-0100", 備考="東京\x00本社"))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.count(CONTROL) == 2  # on each of the two fields, said once
    assert "保存はされていません" in body
    assert record_count(app) == before


def test_tab_and_line_breaks_are_kept_in_multi_line_text_only(app, login, sample):
    from webapp.databases.models import Record

    editor = login("editor")
    refused = editor.post(f"/dbs/{sample['database']}/records/new",
                          data=record_post(sample, 請求番号="INV\t0100", 品名="用紙\r\nA4"))
    body = refused.get_data(as_text=True)
    assert refused.status_code == 200 and body.count(ONE_LINE) == 2
    saved = editor.post(f"/dbs/{sample['database']}/records/new",
                        data=record_post(sample, 備考="1行目\r\n\t2行目"))
    assert saved.status_code == 302
    with app.app_context():
        record = db.session.execute(select(Record).order_by(Record.id.desc())).scalars().first()
        assert record.data[str(sample["fields"]["備考"])] == "1行目\r\n\t2行目"


NAME_FORMS = [
    # (what, url template, form data, name field)
    ("DB名", "/dbs/new", {"description": ""}, "name"),
    ("DB名(基本設定)", "/dbs/{database}/settings", {"description": ""}, "name"),
    ("項目名", "/dbs/{database}/fields/new", {"field_type": "text", "placement": "header", "origin": "input"}, "name"),
    ("項目の説明文", "/dbs/{database}/fields/new", {"name": "新しい項目", "field_type": "text", "placement": "header",
                                               "origin": "input"}, "help_text"),
    ("メニュー名", "/dbs/{database}/menus/new", {"columns-0-field_id": "{first_field}", "page_size": "50",
                                             "sort_desc": "0"}, "name"),
    ("楽楽明細連携名", "/dbs/{database}/integrations/new", {"url": "http://127.0.0.1:9/demo/", "token": "T0KEN-abc",
                                                     "data_kind": "customer", "report_mail": "0"}, "name"),
    ("ユーザ名", "/admin/users/new", {"password": "Sakura-2026-blue", "password_confirm": "Sakura-2026-blue"},
     "username"),
    ("氏名", "/admin/users/new", {"username": "tanaka", "password": "Sakura-2026-blue",
                                "password_confirm": "Sakura-2026-blue"}, "display_name"),
]


@pytest.mark.parametrize("value,message", [("名前\x00", CONTROL), ("名前\r\nBcc: x@example.com", ONE_LINE),
                                           ("名前\x1b[31m", CONTROL), ("名前\t", ONE_LINE)],
                         ids=["NUL", "CRLF", "ESC", "tab"])
@pytest.mark.parametrize("what,url,data,name", NAME_FORMS, ids=["db", "db-settings", "field", "field-help", "menu",
                                                                  "setting", "username", "display-name"])
def test_single_line_names_refuse_control_characters_and_line_breaks(app, login, sample, what, url, data, name,
                                                                     value, message):
    first_field = sample["fields"]["請求番号"]
    url = url.format(database=sample["database"])
    data = {k: v.format(first_field=first_field) for k, v in data.items()} | {name: value}
    admin = login("admin")  # logging in is audited: before the snapshot
    before = database_state(app)
    response = admin.post(url, data=data)
    assert response.status_code == 200, what
    assert message in response.get_data(as_text=True), what
    assert database_state(app) == before, f"{what} was saved"


def test_control_characters_in_the_search_are_a_400_with_a_message(app, login, sample):
    user = login("plain")
    for query in ("q=INV%00", "q=INV%0A1", "q=%09", "desc=%00", "q%00=1"):
        response = user.get(f"/menus/{sample['menu']}?{query}")
        assert response.status_code == 400, query
        assert QUERY_REFUSED in response.get_data(as_text=True)
    assert user.get(f"/menus/{sample['menu']}?q=INV").status_code == 200


def test_every_get_route_refuses_control_characters_in_its_query(app, installed):
    values = ids_of(app)
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        url = url_of(rule, values)
        response = installed.get(url + "?q=%00&page=1%0D%0A")
        assert response.status_code == 400, f"{url}: {response.status_code}"
        assert QUERY_REFUSED in response.get_data(as_text=True), url


FORM_PAGES = [
    "/dbs/new", "/dbs/{database_id}/settings", "/dbs/{database_id}/fields/new",
    "/dbs/{database_id}/fields/{field_id}/edit", "/dbs/{database_id}/menus/new",
    "/dbs/{database_id}/menus/{menu_id}/edit", "/dbs/{database_id}/menus/{menu_id}/integrations",
    "/dbs/{database_id}/integrations/new", "/dbs/{database_id}/integrations/{setting_id}/edit",
    "/dbs/{database_id}/integrations/{setting_id}/timer", "/dbs/{database_id}/records/new",
    "/records/{record_id}/edit", "/admin/users/new", "/admin/permissions/{user_id}",
    "/menus/{menu_id}/integrations/{setting_id}/dialog", "/dbs/{invoice_database_id}/records/new",
    "/records/{invoice_record_id}/edit", "/dbs/{invoice_database_id}/menus/{invoice_menu_id}/edit",
]


def test_every_input_of_every_form_refuses_a_nul_and_saves_nothing(app, installed):
    """Each text input of each form of the demo's pages, one at a time, with a NUL added to what the page holds."""
    values = ids_of(app)
    before = database_state(app)
    checked = set()
    for page_url in FORM_PAGES:
        page_url = page_url.format(**values)
        page = installed.get(page_url)
        assert page.status_code == 200, page_url
        for form in post_forms(page.get_data(as_text=True)):
            target = form["action"] or page_url
            for position, (name, _value, kind) in enumerate(form["fields"]):
                if name == "csrf_token" or (kind == "hidden" and name == "action"):
                    continue
                if kind not in TEXT_KINDS and kind != "hidden":
                    continue
                data: dict[str, list[str]] = {}
                for other, (n, v, _k) in enumerate(form["fields"]):
                    data.setdefault(n, []).append(v + NUL if other == position else v)
                response = installed.client.post(target, data=data)
                where = f"{target} field {name!r}"
                assert response.status_code in (200, 302, 400), f"{where}: {response.status_code}"
                if kind == "hidden":
                    # It may belong to another button's request (接続テスト's setting_id) and the form be saved.
                    before = database_state(app)
                    continue
                assert response.status_code in (200, 400), where
                assert CONTROL in response.get_data(as_text=True), where
                assert database_state(app) == before, f"{where} changed the database"
                checked.add((target, name))
    assert len(checked) > 70  # the pages' forms were found


def test_run_dialog_refuses_control_characters_in_its_memo_and_search(app, demo, login):
    user = login("user")
    url = run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run")
    before = database_state(app)
    for data in ({"memo": "11月\x00"}, {"memo": "11月\r\n分"}, {"q": "C0\x00"}):
        response = user.post(url, data=data)
        assert response.status_code == 400, data
        body = response.get_data(as_text=True)
        assert CONTROL in body or ONE_LINE in body
    preview = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "preview"), data={"q": "C0\x00"})
    assert preview.status_code == 200 and CONTROL in preview.get_data(as_text=True)
    assert database_state(app) == before


def test_a_record_stored_with_a_control_character_before_is_left_out_of_a_run_and_reported(app, demo, login):
    """Data from before the rule (a vertical tab pasted from Word; on SQLite even a NUL) is never sent: 楽楽明細
    would refuse the whole file for it."""
    from run_helpers import field_named, records_of

    from webapp.runs.models import RecordStatus, RunRecord

    with app.app_context():
        first = records_of("顧客")[0]
        key = field_named("顧客", "顧客名").key
        first.data = {**first.data, key: "株式会社\x0b青葉"}
        db.session.commit()
        first_id = first.id
    user = login("user")
    response = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={},
                         headers={"HX-Request": "true", "HX-Target": "run-dialog"})
    assert response.status_code == 200
    with app.app_context():
        run = execute(latest_run().id)
        assert run.status == "partial"
        left_out = db.session.execute(select(RunRecord).where(RunRecord.run_id == run.id,
                                                              RunRecord.record_id == first_id)).scalar_one()
        assert left_out.status == RecordStatus.INVALID and "顧客名" in left_out.message and "制御文字" in left_out.message
    codes = {c.code for c in demo.client().search_customers("C000")}
    assert len(codes) == 29 and "C00001" not in codes


# ---- 10. ids beyond the database's integers ----------------------------------------------------------------


@pytest.mark.parametrize("huge", [HUGE, "2147483648", "9" * 5000])
def test_every_int_in_every_url_rule_is_a_404_when_too_large(app, installed, huge):
    values = ids_of(app)
    rules = int_rules(app)
    assert len(rules) > 30
    for rule in rules:
        for name in rule._converters:
            url = url_of(rule, {**values, name: huge})
            if "GET" in rule.methods:
                response = installed.get(url)
            else:
                response = installed.post(url, data={})
            assert response.status_code == 404, f"{rule.rule} with {name}={huge[:20]}: {response.status_code}"


def test_huge_numbers_in_query_and_form_parameters_are_clamped_never_a_500(app, installed):
    v = ids_of(app)
    for url in (f"/menus/{v['menu_id']}?page={HUGE}", f"/menus/{v['menu_id']}?sort={HUGE}&desc=1",
                f"/menus/{v['menu_id']}?page=-{HUGE}", f"/records/{v['record_id']}?menu={HUGE}",
                f"/dbs/{v['database_id']}/records/new?menu={HUGE}", f"/runs?page={HUGE}",
                f"/menus/{v['menu_id']}/runs?page={HUGE}", f"/admin/audit?page={HUGE}", f"/admin/mails?page={HUGE}",
                f"/menus/{v['menu_id']}?page=2147483648"):
        response = installed.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
    before = database_state(app)
    for url, data in (
        (f"/dbs/{v['database_id']}/integrations/connection-test", {"url": "http://127.0.0.1:9/demo/",
                                                                   "setting_id": HUGE}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/integrations", {"action": "add_setting",
                                                                         "new_setting_id": HUGE}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/integrations", {"action": "save", "setting_ids": HUGE}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/integrations", {"action": "save", "setting_ids": "²"}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/integrations", {"action": "save",
                                                                         "setting_ids": f"{v['setting_id']}\x00"}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/edit", {"name": "一覧", "columns-0-field_id": HUGE,
                                                                 "page_size": "50", "sort_desc": "0"}),
        (f"/dbs/{v['database_id']}/menus/{v['menu_id']}/edit", {"name": "一覧", "columns-0-field_id": str(v["field_id"]),
                                                                 "page_size": "9" * 5000, "sort_desc": "0",
                                                                 "sort_field_id": HUGE}),
        (f"/records/{v['record_id']}/edit", {"action": "remove_row:²"}),
        (f"/records/{v['record_id']}/edit", {"action": "remove_row:" + "9" * 5000}),
        (f"/dbs/{v['database_id']}/integrations/{v['setting_id']}/edit", {
            "name": "連携", "url": "http://127.0.0.1:9/demo/", "data_kind": "customer", "report_mail": "0",
            "import_setting_id": "9" * 5000}),
        (f"/dbs/{v['database_id']}/integrations/{v['setting_id']}/timer", {
            "enabled": "1", "priority": "²", "kind": "monthly", "at_time": "09:00", "month_day": "²",
            "weekdays": "²"}),
    ):
        response = installed.post(url, data=data)
        assert response.status_code in (200, 400, 404), f"{url} {data}: {response.status_code}"
    assert database_state(app) == before


def test_a_huge_page_number_shows_the_last_page(app, login, listing):
    last = login("plain").get(f"/menus/{listing['menu']}?page={HUGE}").get_data(as_text=True)
    assert "INV-0060" in last and "INV-0010" not in last


def test_a_huge_detail_row_index_is_not_a_500(app, login, sample):
    f = sample["fields"]
    data = record_post(sample) | {f"details-{'9' * 5000}-f{f['品名']}": "用紙", f"details-²-f{f['品名']}": "用紙"}
    assert login("editor").post(f"/records/{sample['record']}/edit", data=data).status_code in (200, 302)


# ---- 11. CR/LF in names never stops a mail ------------------------------------------------------------------


def test_a_pending_mail_with_line_breaks_and_control_characters_in_its_subject_is_delivered(app, smtp_server):
    from webapp.mail.models import OutboxMail
    from webapp.mail.operations import deliver

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        mail = OutboxMail(recipients=["keiri@example.co.jp"], subject="【楽楽明細連携】顧客\r\nBcc: x@example.com\x1b: 完了",
                          body="本文\x1bです", status="pending")
        db.session.add(mail)
        db.session.commit()
        deliver(mail)
        assert db.session.get(OutboxMail, mail.id).status == "sent"
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["to"] == ["keiri@example.co.jp"]  # no Bcc smuggled in
    assert "\n" not in received["subject"] and "Bcc" in received["subject"] and "完了" in received["subject"]


def test_a_mail_that_cannot_be_sent_is_marked_failed_not_left_pending(app):
    from webapp.mail.models import OutboxMail
    from webapp.mail.operations import deliver

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=9)  # nothing listens there
    with app.app_context():
        mail = OutboxMail(recipients=["keiri@example.co.jp\r\nBcc: x@example.com"], subject="件名\r\n", body="",
                          status="pending")
        db.session.add(mail)
        db.session.commit()
        deliver(mail)
        stored = db.session.get(OutboxMail, mail.id)
        assert stored.status == "failed" and stored.error


def test_a_setting_named_with_a_line_break_before_still_gets_its_report_mail(app, demo, login, smtp_server):
    """A name stored before CR/LF was refused left the run's report mail pending for ever."""
    from webapp.mail.models import OutboxMail

    with app.app_context():
        setting = setting_named(CUSTOMER_SETTING)
        setting.name = "顧客を連携\r\nBcc: x@example.com"
        db.session.commit()
        menu_id, setting_id = menu_named(CUSTOMER_MENU).id, setting.id
    response = login("user").post(f"/menus/{menu_id}/integrations/{setting_id}/run", data={},
                                   headers={"HX-Request": "true", "HX-Target": "run-dialog"})
    assert response.status_code == 200
    with app.app_context():
        run = execute(latest_run().id)
        assert run.status == "completed"
        assert db.session.execute(select(OutboxMail.status).where(OutboxMail.run_id == run.id)).scalar_one() == "sent"
    assert len(smtp_server.messages) == 1 and smtp_server.messages[0]["to"] == ["user@example.co.jp"]


# ---- 12. more 明細 rows than allowed ------------------------------------------------------------------------


def detail_rows(sample, count: int) -> dict:
    f = sample["fields"]
    rows = {}
    for i in range(count):
        rows[f"details-{i}-f{f['品名']}"] = f"品目{i + 1}"
        rows[f"details-{i}-f{f['数量']}"] = "1"
    return rows


def test_more_detail_rows_than_allowed_is_an_error_and_every_row_stays_on_the_form(app, login, sample):
    from webapp.databases.models import Record

    response = login("editor").post(f"/records/{sample['record']}/edit",
                                    data=record_post(sample) | detail_rows(sample, 501))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "明細は500行までです(送信された行: 501行)" in body
    assert 'value="品目501"' in body  # nothing cut off: the user chooses what to remove
    with app.app_context():
        assert len(db.session.get(Record, sample["record"]).details) == 1


def test_five_hundred_detail_rows_posted_as_the_browser_does_are_all_saved(app, login, sample):
    from webapp.databases.models import Record

    response = login("editor").post(f"/records/{sample['record']}/edit",
                                    data=record_post(sample) | detail_rows(sample, 500),
                                    content_type="multipart/form-data")
    assert response.status_code == 302, response.status_code
    with app.app_context():
        details = db.session.get(Record, sample["record"]).details
        assert len(details) == 500 and details[-1][str(sample["fields"]["品名"])] == "品目500"


def test_more_menu_columns_than_allowed_is_an_error_not_a_silent_cut(app, login, sample):
    from webapp.databases.models import Menu

    field_id = sample["fields"]["請求番号"]
    data = {"name": "一覧", "page_size": "50", "sort_desc": "0"}
    data |= {f"columns-{i}-field_id": str(field_id) if i == 60 else "" for i in range(61)}
    editor = login("editor")
    before = database_state(app)
    response = editor.post(f"/dbs/{sample['database']}/menus/{sample['menu']}/edit", data=data)
    assert response.status_code == 200
    assert "表示項目は60行までです(送信された行: 61行)" in response.get_data(as_text=True)
    assert database_state(app) == before
    with app.app_context():
        assert db.session.get(Menu, sample["menu"]).name == "請求書一覧"


# ---- 13. request log lines ---------------------------------------------------------------------------------


def test_a_crafted_path_cannot_forge_a_request_log_line(client, users, caplog):
    caplog.set_level("INFO", logger="webapp.request")
    forged = "2026-11-26 09:00:00,000 INFO webapp.request: rid=forged user=1 POST /admin/users/new 302 1ms"
    client.get("/login%0D%0A" + quote(forged) + "%1B%5B2K")
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.request"]
    assert lines, "the request was not logged"
    line = lines[-1]
    assert "\r" not in line and "\n" not in line and "\x1b" not in line
    assert "/login\\r\\n2026-11-26" in line and "\\x1b[2K" in line


# ---- in the browser ----------------------------------------------------------------------------------------


def screenshots(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}_{width}.png"))


@pytest.mark.browser
def test_pasted_tab_in_a_record_field_is_shown_on_the_field_and_the_input_is_kept(page, live_server, sample):
    from playwright.sync_api import expect

    browser_login(page, live_server, "editor")
    page.goto(f"{live_server}/dbs/{sample['database']}/records/new")
    number = page.get_by_label("請求番号")
    number.fill("INV-0100\t2")  # a cell pasted from Excel with its neighbour
    page.get_by_label("備考").fill("1行目\n\t2行目")  # multi-line text keeps both
    page.get_by_role("button", name="確定").click()
    row = page.locator(".form-row.has-error")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("請求番号")
    expect(row).to_contain_text("改行は入力できません(1行の項目です。タブも使えません)")
    expect(page.get_by_role("alert").first).to_contain_text("保存はされていません")
    assert page.get_by_label("請求番号").input_value() == "INV-0100\t2"
    assert page.get_by_label("備考").input_value() == "1行目\n\t2行目"
    screenshots(page, "input_guard_record_form")
    page.get_by_label("請求番号").fill("INV-0100")
    page.get_by_role("button", name="確定").click()
    expect(page.get_by_text("レコードを保存しました。")).to_be_visible()


@pytest.mark.browser
def test_a_search_with_a_tab_says_why_in_the_toast(page, live_server, sample):
    from playwright.sync_api import expect

    browser_login(page, live_server, "plain")
    page.goto(f"{live_server}/menus/{sample['menu']}")
    page.locator("#keyword").fill("INV\t0001")
    page.locator("#keyword").press("Enter")
    toast = page.locator("#toast")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("URLまたは検索条件に使えない文字(改行・タブ・NULなどの制御文字)が含まれています")
    screenshots(page, "input_guard_search_toast")
    page.locator("#keyword").fill("INV-0001")
    page.locator("#keyword").press("Enter")
    expect(page.locator("#record-table tbody tr")).to_have_count(1)
