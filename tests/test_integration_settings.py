"""楽楽明細連携設定: the conditional form matrix, validation at the field, token secrecy, 接続テスト, menus, audit."""

import logging

import pytest

from webapp.core.audit import AuditEntry
from webapp.databases.models import Field
from webapp.databases.operations import FieldSpec, add_field
from webapp.extensions import db
from webapp.integrations.models import RUN_TIME, IntegrationSetting, MenuIntegration

TOKEN = "tok-SECRET-0123456789abcdef"


@pytest.fixture
def setup(app, sample):
    """The sample DB plus a link field and a dependent 自動生成ファイル field (not allowed as PDF targets)."""
    from webapp.databases.models import Database

    with app.app_context():
        database = db.session.get(Database, sample["database"])
        add_field(database, FieldSpec("リンクPDF", "autofile", origin="link"))
        add_field(database, FieldSpec("担当者", "text", origin="dependent"))
        db.session.commit()
    return sample


def url(s, tail=""):
    return f"/dbs/{s['database']}/integrations{tail}"


def base_form(s, **overrides):
    data = {"name": "請求書を送る", "url": "https://acme.eco-serv.jp/acme/backadmin/top", "token": TOKEN,
            "data_kind": "report_csv", "report_mail": "0", "report_type_id": "1", "import_method": "new",
            "skip_approval": "0", "action": "save"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def saved(app):
    with app.app_context():
        setting = db.session.query(IntegrationSetting).order_by(IntegrationSetting.id.desc()).first()
        if setting is None:
            return None
        db.session.expunge(setting)
        return setting


def fields_shown(body):
    names = ["import_setting_id", "overwrite_in_use", "overwrite_blank", "report_type_id", "import_method",
             "skip_approval", "issue_method", "replace_notify_mail", "replace_postal", "replace_fax",
             "approval_flow_id", "pdf_field_id", "report_mail_to", "report_mail_errors_only"]
    return {n for n in names if f'name="{n}"' in body}


CUSTOMER = {"import_setting_id", "overwrite_in_use", "overwrite_blank"}
REPORT = {"report_type_id", "skip_approval", "approval_flow_id"}
REPLACE = {"replace_notify_mail", "replace_postal", "replace_fax"}


@pytest.mark.parametrize(
    "choices,expected",
    [
        ({"data_kind": "customer"}, CUSTOMER),
        ({"data_kind": "customer", "report_mail": "1"}, CUSTOMER | {"report_mail_to", "report_mail_errors_only"}),
        ({"data_kind": "report_csv", "import_method": "new", "skip_approval": "0"}, REPORT | {"import_method"}),
        ({"data_kind": "report_csv", "import_method": "replace", "skip_approval": "0"}, REPORT | {"import_method"} | REPLACE),
        ({"data_kind": "report_csv", "import_method": "new", "skip_approval": "1"}, REPORT | {"import_method", "issue_method"}),
        ({"data_kind": "report_csv", "import_method": "replace", "skip_approval": "1"},
         REPORT | {"import_method", "issue_method"} | REPLACE),
        ({"data_kind": "report_pdf", "skip_approval": "0"}, REPORT | {"pdf_field_id"}),
        ({"data_kind": "report_pdf", "skip_approval": "1"}, REPORT | {"pdf_field_id", "issue_method"}),
        ({"data_kind": "report_pdf_csv", "skip_approval": "1", "import_method": "replace"},
         REPORT | {"pdf_field_id", "issue_method"}),
    ],
)
def test_form_shows_exactly_the_settings_that_apply(login, setup, choices, expected):
    response = login("editor").post(
        url(setup, "/new"), data=base_form(setup, action="refresh", **choices),
        headers={"HX-Request": "true", "HX-Target": "setting-form-body"},
    )
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="setting-form-body">')
    assert fields_shown(body) == expected
    assert TOKEN not in body  # a typed token is never echoed back


def test_customer_setting_stores_only_customer_values(app, login, setup):
    data = base_form(setup, data_kind="customer", import_setting_id="3", overwrite_in_use="1", overwrite_blank="1",
                     report_type_id="7", skip_approval="1", issue_method="scheduled", import_method="replace",
                     replace_fax="1", approval_flow_id="2")
    assert login("editor").post(url(setup, "/new"), data=data).status_code == 302
    s = saved(app)
    assert (s.data_kind, s.import_setting_id, s.overwrite_in_use, s.overwrite_blank) == ("customer", 3, True, True)
    # Hidden settings were neither validated nor stored.
    assert (s.report_type_id, s.skip_approval, s.issue_method, s.import_method, s.replace_fax, s.approval_flow_id) == (
        None, False, None, None, False, None)
    assert s.base_url == "https://acme.eco-serv.jp/acme/"


def test_blank_import_setting_id_is_stored_as_none(app, login, setup):
    assert login("editor").post(url(setup, "/new"), data=base_form(setup, data_kind="customer", import_setting_id="")).status_code == 302
    assert saved(app).import_setting_id is None


@pytest.mark.parametrize(
    "choices,stored",
    [
        ({"import_method": "new", "skip_approval": "0", "issue_method": "scheduled", "replace_postal": "1"},
         {"import_method": "new", "skip_approval": False, "issue_method": None, "replace_postal": False}),
        ({"import_method": "new", "skip_approval": "1", "issue_method": "scheduled"},
         {"import_method": "new", "skip_approval": True, "issue_method": "scheduled"}),
        ({"import_method": "replace", "skip_approval": "1", "issue_method": "immediate", "replace_notify_mail": "1",
          "replace_postal": "0", "replace_fax": "1"},
         {"import_method": "replace", "issue_method": "immediate", "replace_notify_mail": True, "replace_postal": False,
          "replace_fax": True}),
    ],
)
def test_report_csv_variants_store_their_values(app, login, setup, choices, stored):
    assert login("editor").post(url(setup, "/new"), data=base_form(setup, **choices)).status_code == 302
    s = saved(app)
    for key, value in stored.items():
        assert getattr(s, key) == value, key
    assert s.import_setting_id is None and s.pdf_field_id is None


def test_pdf_setting_offers_only_header_autofile_fields_and_stores_choice(app, login, setup):
    editor = login("editor")
    body = editor.post(url(setup, "/new"), data=base_form(setup, data_kind="report_pdf", action="refresh")).get_data(as_text=True)
    pdf_select = body[body.index('name="pdf_field_id"'):]
    pdf_select = pdf_select[: pdf_select.index("</select>")]
    assert "請求書PDF" in pdf_select
    assert "リンクPDF" not in pdf_select and "添付" not in pdf_select
    data = base_form(setup, data_kind="report_pdf", pdf_field_id=str(setup["fields"]["請求書PDF"]), import_method="replace")
    assert editor.post(url(setup, "/new"), data=data).status_code == 302
    s = saved(app)
    assert s.pdf_field_id == setup["fields"]["請求書PDF"]
    assert s.import_method == "new"  # PDF modes always issue new documents


def test_pdf_setting_without_autofile_fields_explains(app, login, setup):
    with app.app_context():
        db.session.delete(db.session.get(Field, setup["fields"]["請求書PDF"]))
        db.session.commit()
    body = login("editor").post(url(setup, "/new"), data=base_form(setup, data_kind="report_pdf")).get_data(as_text=True)
    assert "自動生成ファイルのヘッダ項目がありません" in body
    assert saved(app) is None


def link_pdf_id(app):
    with app.app_context():
        return str(db.session.query(Field).filter_by(name="リンクPDF").one().id)


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"url": ""}, "url", "URLを入力してください"),
        ({"url": "http://acme.eco-serv.jp/acme/"}, "url", "https://"),
        ({"url": "ftp://acme.eco-serv.jp/acme/"}, "url", "https://"),
        ({"url": "https://acme.eco-serv.jp/"}, "url", "アカウント"),
        ({"token": ""}, "token", "APIトークンを入力してください"),
        ({"token": "全角トークン"}, "token", "使えない文字"),
        ({"name": ""}, "name", "楽楽明細連携名を入力してください"),
        ({"name": "あ" * 101}, "name", "100文字以内"),
        ({"report_type_id": "0"}, "report_type_id", "1以上の整数"),
        ({"report_type_id": "-1"}, "report_type_id", "1以上の整数"),
        ({"report_type_id": "abc"}, "report_type_id", "1以上の整数"),
        ({"report_type_id": ""}, "report_type_id", "入力してください"),
        ({"report_type_id": "1234567890"}, "report_type_id", "9桁以内"),
        ({"approval_flow_id": "1.5"}, "approval_flow_id", "1以上の整数"),
        ({"data_kind": "customer", "import_setting_id": "0"}, "import_setting_id", "1以上の整数"),
        ({"data_kind": "report_pdf", "pdf_field_id": ""}, "pdf_field_id", "自動生成ファイル項目を選んでください"),
        ({"data_kind": "report_pdf", "pdf_field_id": "__attachment__"}, "pdf_field_id", "自動生成ファイル項目を選んでください"),
        ({"data_kind": "report_pdf", "pdf_field_id": "__link__"}, "pdf_field_id", "自動生成ファイル項目を選んでください"),
    ],
)
def test_invalid_input_is_rejected_at_the_field(app, login, setup, overrides, field, message):
    overrides = dict(overrides)
    if overrides.get("pdf_field_id") == "__attachment__":
        overrides["pdf_field_id"] = str(setup["fields"]["添付"])
    if overrides.get("pdf_field_id") == "__link__":
        overrides["pdf_field_id"] = link_pdf_id(app)
    response = login("editor").post(url(setup, "/new"), data=base_form(setup, **overrides))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert message in body
    assert f'id="{field}-errors"' in body
    assert saved(app) is None


def updates(setup, *rows):
    data = {}
    for i, (name, value, mode) in enumerate(rows):
        data[f"record_updates-{i}-field_id"] = str(setup["fields"][name]) if name in setup["fields"] else name
        data[f"record_updates-{i}-value"] = value
        data[f"record_updates-{i}-mode"] = mode
    return data


def test_record_updates_are_stored(app, login, setup):
    data = base_form(setup, **updates(setup, ("連携ステータス", "連携済", "fixed"), ("連携日時", "", RUN_TIME),
                                      ("請求番号", "送信済み", "fixed")))
    assert login("editor").post(url(setup, "/new"), data=data).status_code == 302
    with app.app_context():
        s = db.session.query(IntegrationSetting).one()
        assert [(r.field.name, r.value) for r in s.record_updates] == [
            ("連携ステータス", "連携済"), ("連携日時", RUN_TIME), ("請求番号", "送信済み")]


def test_record_update_with_fixed_datetime(app, login, setup):
    data = base_form(setup, **updates(setup, ("連携日時", "2026-12-01T09:30", "fixed")))
    assert login("editor").post(url(setup, "/new"), data=data).status_code == 302
    with app.app_context():
        assert db.session.query(IntegrationSetting).one().record_updates[0].value == "2026-12-01 09:30"


@pytest.mark.parametrize(
    "rows,message",
    [
        ([("連携ステータス", "連携済", "fixed"), ("連携日時", "", RUN_TIME), ("請求番号", "x", "fixed"),
          ("__extra__", "y", "fixed")], "最大3個まで"),
        ([("連携ステータス", "連携済", "fixed"), ("連携ステータス", "未連携", "fixed")], "重複しています"),
        ([("請求金額", "100", "fixed")], "指定できない項目"),
        ([("タグ", "至急", "fixed")], "指定できない項目"),
        ([("連携ステータス", "送信済", "fixed")], "選択肢にない値"),
        ([("連携日時", "来週", "fixed")], "YYYY-MM-DD HH:MM"),
        ([("請求番号", "x" * 256, "fixed")], "255文字以内"),
    ],
)
def test_bad_record_updates_are_rejected(app, login, setup, rows, message):
    rows = [(str(setup["fields"]["備考"]) if n == "__extra__" else n, v, m) for n, v, m in rows]
    # With 4 rows the count is refused before the 4th row's field (備考, テキスト(複数行)) is looked at.
    response = login("editor").post(url(setup, "/new"), data=base_form(setup, **updates(setup, *rows)))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert saved(app) is None


def test_add_update_row_stops_at_three(login, setup):
    editor = login("editor")
    data = base_form(setup, action="add_update", **updates(setup, ("連携ステータス", "連携済", "fixed"),
                                                          ("連携日時", "", RUN_TIME), ("請求番号", "x", "fixed")))
    body = editor.post(url(setup, "/new"), data=data).get_data(as_text=True)
    assert 'name="record_updates-3-field_id"' not in body
    assert "更新する項目を追加" not in body


def test_record_update_select_offers_only_allowed_types(login, setup):
    data = base_form(setup, action="add_update")
    body = login("editor").post(url(setup, "/new"), data=data).get_data(as_text=True)
    select = body[body.index('name="record_updates-0-field_id"'):]
    select = select[: select.index("</select>")]
    assert "請求番号" in select and "連携ステータス" in select and "連携日時" in select
    for excluded in ("請求金額", "請求日", "タグ", "備考", "確認済", "担当者", "品名"):
        assert excluded not in select


def test_token_is_encrypted_masked_and_never_leaks(app, login, setup, caplog):
    caplog.set_level(logging.DEBUG)
    editor = login("editor")
    assert editor.post(url(setup, "/new"), data=base_form(setup)).status_code == 302
    s = saved(app)
    assert TOKEN not in s.token_encrypted
    pages = [editor.get(url(setup)).get_data(as_text=True),
             editor.get(url(setup, f"/{s.id}/edit")).get_data(as_text=True),
             login("admin").get("/admin/audit").get_data(as_text=True)]
    for page in pages:
        assert TOKEN not in page
    assert "設定済み(••••••••)" in pages[0]
    assert TOKEN not in caplog.text
    with app.app_context():
        from webapp.integrations.operations import token_of

        assert token_of(db.session.get(IntegrationSetting, s.id)) == TOKEN


def test_blank_token_on_edit_keeps_the_stored_token(app, login, setup):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup))
    s = saved(app)
    assert editor.post(url(setup, f"/{s.id}/edit"), data=base_form(setup, token="", name="改名")).status_code == 302
    with app.app_context():
        from webapp.integrations.operations import token_of

        stored = db.session.get(IntegrationSetting, s.id)
        assert stored.name == "改名" and token_of(stored) == TOKEN


def test_token_unreadable_after_key_change_asks_for_reentry(app, login, setup):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup))
    app.config["TOKEN_ENCRYPTION_KEY"] = "P0JXSEx6VVZfQm1QeGZkT1ZRYUZjVUF0aVlTRkxMc2M="
    body = editor.get(url(setup)).get_data(as_text=True)
    assert "要再入力" in body
    body = editor.get(url(setup, f"/{saved(app).id}/edit")).get_data(as_text=True)
    assert "再入力してください" in body


def test_audit_log_records_diff_with_token_only_as_changed(app, login, setup):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup))
    s = saved(app)
    editor.post(url(setup, f"/{s.id}/edit"), data=base_form(setup, token="tok-NEW-0123456789abcdef", skip_approval="1",
                                                         issue_method="scheduled"))
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(action="update").one()
        assert entry.changes["承認スキップ"] == ["しない", "する"]
        assert entry.changes["発行方法"] == ["", "予約発行"]
        assert entry.changes["APIトークン"] == ["", "変更"]
        assert entry.user.username == "editor"
    page = login("admin").get("/admin/audit").get_data(as_text=True)
    assert "予約発行" in page and "tok-NEW" not in page


def test_delete_setting_detaches_it_from_menus(app, login, setup):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup))
    s = saved(app)
    editor.post(f"/dbs/{setup['database']}/menus/{setup['menu']}/integrations", data={"setting_ids": [str(s.id)], "action": "save"})
    assert f'data-setting-id="{s.id}"' in editor.get(f"/menus/{setup['menu']}").get_data(as_text=True)
    assert editor.post(url(setup, f"/{s.id}/delete")).status_code == 302
    with app.app_context():
        assert db.session.query(MenuIntegration).count() == 0
    assert f'data-setting-id="{s.id}"' not in editor.get(f"/menus/{setup['menu']}").get_data(as_text=True)
    assert editor.get(url(setup, f"/{s.id}/edit")).status_code == 404


def test_menu_integration_settings_add_order_remove(app, login, setup):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup, name="一つ目"))
    editor.post(url(setup, "/new"), data=base_form(setup, name="二つ目", data_kind="customer"))
    with app.app_context():
        first, second = [s.id for s in db.session.query(IntegrationSetting).order_by(IntegrationSetting.id)]
    menu_url = f"/dbs/{setup['database']}/menus/{setup['menu']}/integrations"
    body = editor.post(menu_url, data={"setting_ids": [str(first)], "new_setting_id": str(second), "action": "add_setting"}).get_data(as_text=True)
    assert body.index("一つ目") < body.index("二つ目")
    body = editor.post(menu_url, data={"setting_ids": [str(first), str(second)], "action": "up_setting:1"}).get_data(as_text=True)
    assert body.index("二つ目") < body.index("一つ目")
    with app.app_context():
        assert db.session.query(MenuIntegration).count() == 0  # nothing saved before 確定
    assert editor.post(menu_url, data={"setting_ids": [str(second), str(first)], "action": "save"}).status_code == 302
    listing = login("plain").get(f"/menus/{setup['menu']}").get_data(as_text=True)
    assert listing.index("二つ目") < listing.index("一つ目")
    with app.app_context():
        assert db.session.query(AuditEntry).filter_by(target_type="システム連携設定").count() == 1


def test_menu_integrations_refuse_a_setting_of_another_db(app, login, setup):
    editor = login("editor")
    editor.post("/dbs/new", data={"name": "別DB"})
    from webapp.databases.models import Database

    with app.app_context():
        other = db.session.query(Database).filter_by(name="別DB").one().id
    editor.post(f"/dbs/{other}/integrations/new", data=base_form(setup, name="別の連携"))
    foreign = saved(app).id
    response = editor.post(f"/dbs/{setup['database']}/menus/{setup['menu']}/integrations",
                           data={"setting_ids": [str(foreign)], "action": "save"})
    assert response.status_code == 200
    assert "このDBの楽楽明細連携設定から選んでください" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(MenuIntegration).count() == 0


SETTING_ROUTES = [
    ("GET", "{list}", None),
    ("GET", "{list}/new", None),
    ("POST", "{list}/new", {"name": ""}),
    ("GET", "{list}/{sid}/edit", None),
    ("POST", "{list}/{sid}/edit", {"name": ""}),
    ("POST", "{list}/connection-test", {"url": "http://127.0.0.1:9/x/", "token": "t"}),
    ("GET", "/dbs/{db}/menus/{menu}/integrations", None),
    ("POST", "/dbs/{db}/menus/{menu}/integrations", {"action": "add_setting"}),
    ("POST", "{list}/{sid}/delete", {}),
]


@pytest.mark.parametrize("role,allowed", [("admin", True), ("editor", True), ("only_db", False), ("only_sys", False),
                                          ("plain", False)])
@pytest.mark.parametrize("index", range(len(SETTING_ROUTES)))
def test_settings_permission_matrix(app, login, setup, users, role, allowed, index):
    from webapp.auth.operations import create_user

    with app.app_context():
        from webapp.databases.models import Database
        from webapp.integrations.models import DataKind
        from webapp.integrations.operations import SettingValues, save_setting

        s = save_setting(db.session.get(Database, setup["database"]), SettingValues(
            name="x", base_url="https://a.eco-serv.jp/a/", token="t0123456789", data_kind=DataKind.CUSTOMER))
        sid = s.id
        create_user("only_db", "only-db-pass-1", can_db_settings=True)
        create_user("only_sys", "only-sys-pass-1", can_system_integration=True)
        db.session.commit()
    method, pattern, data = SETTING_ROUTES[index]
    path = pattern.format(list=url(setup), sid=sid, db=setup["database"], menu=setup["menu"])
    user = login(role)
    response = user.get(path) if method == "GET" else user.post(path, data=data)
    if allowed:
        assert response.status_code in (200, 302), (role, path)
    else:
        assert response.status_code == 403, (role, path)
        assert "「DB設定・システム連携」権限が必要です" in response.get_data(as_text=True)


def test_audit_log_is_for_administrators_only(login, setup):
    assert login("admin").get("/admin/audit").status_code == 200
    assert login("editor").get("/admin/audit").status_code == 403


def test_permission_grants_are_audited(app, login, users):
    login("admin").post(f"/admin/permissions/{users['plain']}", data={"can_system_integration": "y"})
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(action="permission").one()
        assert entry.changes == {"システム連携": ["−", "○"]}


@pytest.mark.parametrize(
    "case,expected_ok,message",
    [
        ("ok", True, "接続に成功しました"),
        ("wrong_token", False, "APIトークン"),
        ("maintenance", False, "メンテナンス"),
        ("unreachable", False, "接続できません"),
    ],
)
def test_connection_test_against_the_emulator(login, setup, emulator, case, expected_ok, message):
    url_value, token = emulator.base_url, emulator.token
    if case == "wrong_token":
        token = "not-the-token-0123456789"
    elif case == "maintenance":
        emulator.set_faults(maintenance="json")
    elif case == "unreachable":
        from helpers import free_port

        url_value = f"http://127.0.0.1:{free_port()}/demo/"
    response = login("editor").post(url(setup, "/connection-test"), data={"url": url_value, "token": token},
                                    headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert ("flash-success" in body) is expected_ok
    assert message in body, body
    assert token not in body


def test_connection_test_with_blank_token_uses_the_stored_one(app, login, setup, emulator):
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup, url=emulator.base_url, token=emulator.token))
    s = saved(app)
    body = editor.post(url(setup, "/connection-test"), data={"url": emulator.base_url, "token": "", "setting_id": str(s.id)}
                       ).get_data(as_text=True)
    assert "接続に成功しました" in body


def test_bookkeeping_warning_when_a_report_menu_lacks_search_keys(app, login, setup):
    """電子帳簿保存法: warn (never block) when 取引年月日・取引金額・取引先 are not among the menu's columns."""
    editor = login("editor")
    editor.post(url(setup, "/new"), data=base_form(setup))
    s = saved(app)
    menu_url = f"/dbs/{setup['database']}/menus/{setup['menu']}/integrations"
    assert editor.post(menu_url, data={"setting_ids": [str(s.id)], "action": "save"}).status_code == 302
    # The sample menu shows 請求番号, 請求金額, 請求日: 取引先 is missing; 請求日/請求金額 count as 取引年月日/取引金額.
    form = editor.get(url(setup, f"/{s.id}/edit")).get_data(as_text=True)
    assert "電子帳簿保存法" in form
    assert "表示項目に 取引先 に当たる項目がありません" in form  # only 取引先 is named as missing
    assert "電子帳簿保存法" in editor.get(menu_url).get_data(as_text=True)
    dialog = login("plain").get(f"/menus/{setup['menu']}/integrations/{s.id}/dialog").get_data(as_text=True)
    assert "電子帳簿保存法" in dialog
    # A customer integration never warns.
    editor.post(url(setup, f"/{s.id}/edit"), data=base_form(setup, data_kind="customer", token=""))
    assert "電子帳簿保存法" not in editor.get(url(setup, f"/{s.id}/edit")).get_data(as_text=True)
