"""A menu that an integration or a timer uses is changed only with DB設定 and システム連携 (its filter and columns
decide what 楽楽明細 receives); the save names what it affects; deletions, menu changes, user creation and
permission changes are in the 監査ログ."""

from __future__ import annotations

from datetime import time

import pytest
from helpers import browser_login
from sqlalchemy import select

from webapp.core.audit import AuditEntry
from webapp.databases.models import Database, Field, Menu, Record
from webapp.extensions import db

BOTH_NEEDED = "は「楽楽明細」連携またはタイマーで使われています。この操作には「DB設定・システム連携」権限が必要です"


@pytest.fixture
def bound(app, sample):
    """The sample DB with two more menus: 送信待ち (in an integration's サブメニュー) and タイマー用 (a timer's
    メニュー設定), both filtered on 連携ステータス=未連携; plus users with only DB設定 / only システム連携."""
    from webapp.auth.operations import create_user
    from webapp.databases.operations import FilterSpec, MenuSpec, create_menu
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations
    from webapp.timers.operations import TimerValues, save_timer
    from webapp.timers.schedule import Kind

    f = sample["fields"]
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        unsent = [FilterSpec(field_id=f["連携ステータス"], operator="eq", value="未連携")]
        columns = [f["請求番号"], f["請求金額"], f["品名"]]
        attached = create_menu(database, MenuSpec(name="送信待ち", column_field_ids=columns, filters=unsent))
        timed = create_menu(database, MenuSpec(name="タイマー用", column_field_ids=columns, filters=unsent))
        on_menu = save_setting(database, SettingValues(
            name="請求書を楽楽明細へ", base_url="https://example.eco-serv.jp/demo/", token="secret-token-1",
            data_kind=DataKind.REPORT_CSV))
        set_menu_integrations(attached, [on_menu.id])
        on_timer = save_setting(database, SettingValues(
            name="毎朝の請求書", base_url="https://example.eco-serv.jp/demo/", token="secret-token-2",
            data_kind=DataKind.REPORT_CSV))
        save_timer(on_timer, TimerValues(enabled=True, priority=0, kind=Kind.DAILY, at=time(9, 0), menu_id=timed.id))
        create_user("only_db", "only-db-pass-1", can_db_settings=True)
        create_user("only_sys", "only-sys-pass-1", can_system_integration=True)
        db.session.commit()
        return {**sample, "attached": attached.id, "timed": timed.id, "free": sample["menu"]}


def menu_form(s, name, filters=True) -> dict:
    f = s["fields"]
    data = {"name": name, "columns-0-field_id": str(f["請求番号"]), "columns-1-field_id": str(f["請求金額"]),
            "columns-2-field_id": str(f["品名"]), "sort_field_id": "", "sort_desc": "0", "page_size": "50",
            "action": "save"}
    if filters:
        data.update({"filters-0-field_id": str(f["連携ステータス"]), "filters-0-operator": "eq",
                     "filters-0-value": "未連携"})
    return data


def filters_of(app, menu_id) -> list[tuple[str, object]]:
    with app.app_context():
        return [(x.field.name, x.value) for x in db.session.get(Menu, menu_id).filters]


def audit_entries(app, target_type=None) -> list[AuditEntry]:
    with app.app_context():
        statement = select(AuditEntry).order_by(AuditEntry.id)
        if target_type:
            statement = statement.where(AuditEntry.target_type == target_type)
        entries = db.session.execute(statement).scalars().all()
        db.session.expunge_all()
        return entries


@pytest.mark.parametrize("menu_key,name", [("attached", "送信待ち"), ("timed", "タイマー用")])
def test_db_settings_alone_cannot_drop_the_filter_of_a_menu_an_integration_or_timer_sends(
        app, login, bound, menu_key, name):
    url = f"/dbs/{bound['database']}/menus/{bound[menu_key]}/edit"
    response = login("only_db").post(url, data=menu_form(bound, name, filters=False))
    assert response.status_code == 403
    assert f"メニュー「{name}」{BOTH_NEEDED}" in response.get_data(as_text=True)
    assert filters_of(app, bound[menu_key]) == [("連携ステータス", "未連携")]
    # Row edits (no save) are refused too: the form is read-only for this user.
    assert login("only_db").post(url, data={**menu_form(bound, name), "action": "add_filter"}).status_code == 403
    # With both permissions the same change is saved.
    response = login("editor").post(url, data=menu_form(bound, name, filters=False))
    assert response.status_code == 302
    assert filters_of(app, bound[menu_key]) == []


def test_db_settings_alone_sees_a_used_menu_read_only_and_edits_other_menus(app, login, bound):
    only_db = login("only_db")
    body = only_db.get(f"/dbs/{bound['database']}/menus/{bound['timed']}/edit").get_data(as_text=True)
    assert "このメニューはタイマー「毎朝の請求書」(ON・毎日 09:00)で使われているため" in body
    assert '<fieldset class="plain" disabled>' in body
    body = only_db.get(f"/dbs/{bound['database']}/menus/{bound['free']}/edit").get_data(as_text=True)
    assert "menu-locked" not in body and '<fieldset class="plain">' in body
    response = only_db.post(f"/dbs/{bound['database']}/menus/{bound['free']}/edit",
                            data=menu_form(bound, "請求書一覧", filters=False))
    assert response.status_code == 302


def test_deleting_a_used_menu_or_a_field_it_depends_on_needs_both(app, login, bound):
    only_db, f = login("only_db"), bound["fields"]
    base = f"/dbs/{bound['database']}"
    response = only_db.post(f"{base}/menus/{bound['attached']}/delete")
    assert response.status_code == 403 and f"メニュー「送信待ち」{BOTH_NEEDED}" in response.get_data(as_text=True)
    # Deleting 連携ステータス would silently remove the 未連携 filter of both menus.
    response = only_db.post(f"{base}/fields/{f['連携ステータス']}/delete")
    assert response.status_code == 403 and f"項目「連携ステータス」{BOTH_NEEDED}" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Field, f["連携ステータス"]) is not None
        assert db.session.get(Menu, bound["attached"]) is not None
    # A field no used menu shows, filters or sorts on is still DB設定's alone; so is a menu nobody sends.
    assert only_db.post(f"{base}/fields/{f['備考']}/delete").status_code == 302
    assert only_db.post(f"{base}/menus/{bound['free']}/delete").status_code == 302
    assert login("editor").post(f"{base}/menus/{bound['attached']}/delete").status_code == 302


def test_a_timer_without_menu_depends_on_every_field_of_its_db(app, login, bound):
    from webapp.timers.models import Timer

    with app.app_context():
        timer = db.session.execute(select(Timer)).scalar_one()
        timer.menu_id, timer.menu_name = None, ""  # メニュー設定: 指定しない (every record, every field)
        db.session.commit()
    response = login("only_db").post(f"/dbs/{bound['database']}/fields/{bound['fields']['備考']}/delete")
    assert response.status_code == 403 and "項目「備考」" in response.get_data(as_text=True)


def test_saving_a_used_menu_names_the_integrations_and_timers_it_affects(app, login, bound):
    editor = login("editor")
    response = editor.post(f"/dbs/{bound['database']}/menus/{bound['attached']}/edit",
                           data=menu_form(bound, "送信待ち", filters=False), follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "メニュー「送信待ち」を保存しました。" in body
    assert ("この変更で、次の連携が送るレコード・項目が変わります: 楽楽明細連携「請求書を楽楽明細へ」"
            "(変更した設定: 絞り込み条件)") in body
    # A menu no integration uses says nothing more; an unchanged save of a used one neither.
    for menu_id, name, filters in ((bound["free"], "請求書一覧", False), (bound["attached"], "送信待ち", False)):
        body = editor.post(f"/dbs/{bound['database']}/menus/{menu_id}/edit", data=menu_form(bound, name, filters),
                           follow_redirects=True).get_data(as_text=True)
        assert f"メニュー「{name}」を保存しました。" in body and "次の連携が送る" not in body
    body = editor.post(f"/dbs/{bound['database']}/menus/{bound['timed']}/delete",
                       follow_redirects=True).get_data(as_text=True)
    assert "このメニューを使っていた連携: タイマー「毎朝の請求書」(ON・毎日 09:00)" in body


def test_menu_changes_are_audited_with_what_changed(app, login, bound, users):
    login("editor").post(f"/dbs/{bound['database']}/menus/{bound['timed']}/edit",
                         data=menu_form(bound, "タイマー用", filters=False))
    (entry,) = [e for e in audit_entries(app, "メニュー") if e.action == "update"]
    assert entry.target_id == bound["timed"] and entry.target_label == "請求書 › タイマー用"
    assert entry.changes == {"絞り込み条件": ["連携ステータス 等しい 未連携", "なし"]}
    assert entry.user_id == users["editor"]


def test_deletions_and_user_creation_are_audited_and_shown_on_the_audit_log(app, login, bound, users):
    f = bound["fields"]
    admin, editor = login("admin"), login("editor")
    with app.app_context():
        record_id = db.session.execute(select(Record.id)).scalar_one()
        before = db.session.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc())).scalars().first()
    assert editor.post(f"/records/{record_id}/delete").status_code == 302
    assert editor.post(f"/dbs/{bound['database']}/fields/{f['備考']}/delete").status_code == 302
    assert editor.post(f"/dbs/{bound['database']}/menus/{bound['free']}/delete").status_code == 302
    password = "t8#Vq2!mZr-Kobe"
    response = admin.post("/admin/users/new", data={"username": "tanaka", "display_name": "田中 一郎",
                                                    "password": password, "password_confirm": password})
    assert response.status_code == 302
    tanaka = int(response.location.rstrip("/").rsplit("/", 1)[1])
    assert admin.post(f"/admin/permissions/{tanaka}", data={"can_db_settings": "y"}).status_code == 302
    assert editor.post(f"/dbs/{bound['database']}/delete").status_code == 302

    entries = [e for e in audit_entries(app) if e.id > before]
    assert [(e.action, e.target_type, e.target_label, e.changes) for e in entries] == [
        ("delete", "レコード", f"請求書 › レコード{record_id}(INV-0001)", {}),
        ("delete", "項目", "請求書 › 備考", {"項目タイプ": ["テキスト(複数行)", ""]}),
        ("delete", "メニュー", "請求書 › 請求書一覧", {
            "メニュー名": ["請求書一覧", ""], "表示項目": ["請求番号、請求金額、請求日", ""], "絞り込み条件": ["なし", ""],
            "並び順": ["登録順(レコードID) 昇順", ""], "表示件数": ["50件", ""]}),
        ("create", "ユーザ", "tanaka", {"氏名": ["", "田中 一郎"], "管理者": ["", "−"], "DB設定": ["", "−"],
                                        "システム連携": ["", "−"]}),
        ("permission", "全体権限", "tanaka", {"DB設定": ["−", "○"]}),
        ("delete", "DB", "請求書", {"項目": ["11件", ""], "メニュー": ["2件", ""], "レコード": ["0件", ""]}),
    ]
    who = {e.target_type: e.user_id for e in entries}
    assert who["レコード"] == who["DB"] == users["editor"] and who["ユーザ"] == users["admin"]
    page = admin.get("/admin/audit").get_data(as_text=True)
    for shown in ("DB: 請求書", "項目: 請求書 › 備考", "メニュー: 請求書 › 請求書一覧",
                  f"レコード: 請求書 › レコード{record_id}(INV-0001)", "ユーザ: tanaka", "全体権限: tanaka", "田中 一郎"):
        assert shown in page, shown


@pytest.mark.browser
def test_in_the_browser_a_used_menu_is_read_only_for_db_settings_and_its_save_names_the_integration(
        app, page, live_server, bound):
    from pathlib import Path

    from playwright.sync_api import expect

    shots = Path(__file__).resolve().parent.parent / "test-results"

    edit = f"{live_server}/dbs/{bound['database']}/menus/{bound['attached']}/edit"
    browser_login(page, live_server, "only_db")
    page.goto(edit)
    expect(page.locator("#menu-locked")).to_contain_text("楽楽明細連携「請求書を楽楽明細へ」で使われているため")
    expect(page.get_by_role("button", name="確定")).to_be_disabled()
    expect(page.locator("#filter-rows").get_by_role("button", name="削除")).to_be_disabled()
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"menu_locked_{width}.png"), full_page=True)

    page.set_viewport_size({"width": 1366, "height": 900})
    browser_login(page, live_server, "editor")
    page.goto(edit)
    expect(page.locator("#menu-locked")).to_have_count(0)
    page.locator("#filter-rows").get_by_role("button", name="削除").click()
    expect(page.locator("#filter-rows")).to_contain_text("条件はありません")
    page.get_by_role("button", name="確定").click()
    expect(page.locator(".flash-success")).to_contain_text("メニュー「送信待ち」を保存しました。")
    expect(page.locator(".flash-warning")).to_contain_text(
        "この変更で、次の連携が送るレコード・項目が変わります: 楽楽明細連携「請求書を楽楽明細へ」(変更した設定: 絞り込み条件)")
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"menu_saved_{width}.png"), full_page=True)
    assert filters_of(app, bound["attached"]) == []
