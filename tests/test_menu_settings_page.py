"""A menu's settings page (メニュー設定 › 設定) says which integrations its サブメニュー holds and which timers use it."""

from __future__ import annotations

from datetime import time

import lxml.html

from webapp.extensions import db


def make_settings(app, sample):
    from webapp.core.clock import utcnow
    from webapp.databases.models import Database, Menu
    from webapp.databases.operations import MenuSpec, create_menu
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations
    from webapp.timers.operations import TimerValues, save_timer
    from webapp.timers.schedule import Kind

    with app.app_context():
        database = db.session.get(Database, sample["database"])
        menu = db.session.get(Menu, sample["menu"])
        other = create_menu(database, MenuSpec(name="別の一覧", column_field_ids=[sample["fields"]["請求番号"]]))
        made = {}
        for name, kind in (("請求書CSV", DataKind.REPORT_CSV), ("請求書PDF", DataKind.REPORT_PDF_CSV),
                           ("使われない連携", DataKind.REPORT_CSV)):
            made[name] = save_setting(database, SettingValues(
                name=name, base_url="https://acme.eco-serv.jp/acme/", token="tok-0123456789abcdef", data_kind=kind,
                pdf_field_id=sample["fields"]["請求書PDF"])).id
        set_menu_integrations(menu, [made["請求書PDF"], made["請求書CSV"]])
        from webapp.integrations.models import IntegrationSetting

        save_timer(db.session.get(IntegrationSetting, made["使われない連携"]), TimerValues(
            enabled=True, priority=7, kind=Kind.WEEKLY, at=time(8, 15), weekdays=[0], menu_id=menu.id), utcnow())
        save_timer(db.session.get(IntegrationSetting, made["請求書CSV"]), TimerValues(
            enabled=False, priority=1, kind=Kind.DAILY, at=time(9, 0), menu_id=other.id), utcnow())
        db.session.commit()
        return made, other.id


def rows(body: str, table_id: str) -> list[str]:
    table = lxml.html.document_fromstring(body).get_element_by_id(table_id)
    return [" ".join(row.text_content().split()) for row in table.xpath("./tbody/tr")]


def test_menu_page_lists_its_integrations_in_order_and_the_timers_that_use_it(app, login, sample):
    made, other_menu = make_settings(app, sample)
    editor = login("editor")
    body = editor.get(f"/dbs/{sample['database']}/menus/{sample['menu']}/edit").get_data(as_text=True)
    assert rows(body, "menu-attached-integrations") == ["1 請求書PDF 帳票データ(PDF+CSV)", "2 請求書CSV 帳票データ(CSV)"]
    [timer_row] = rows(body, "menu-timers")
    assert timer_row.startswith("使われない連携 ON 毎週 月 08:15") and "次回" in timer_row and timer_row.endswith("7")
    page = lxml.html.document_fromstring(body)
    links = {a.text_content(): a.get("href") for a in page.get_element_by_id("menu-timers").iter("a")}
    assert links["使われない連携"] == f"/dbs/{sample['database']}/integrations/{made['使われない連携']}/timer"

    body = editor.get(f"/dbs/{sample['database']}/menus/{other_menu}/edit").get_data(as_text=True)
    assert rows(body, "menu-attached-integrations") == ["このメニューのサブメニューに連携はありません。"]
    assert rows(body, "menu-timers")[0].startswith("請求書CSV OFF 毎日 09:00")


def test_without_system_integration_the_names_are_shown_without_links(app, login, users, sample):
    from webapp.auth.operations import create_user

    make_settings(app, sample)
    with app.app_context():
        create_user("only_db", "only-db-pass-1", can_db_settings=True)
        db.session.commit()
    body = login("only_db").get(f"/dbs/{sample['database']}/menus/{sample['menu']}/edit").get_data(as_text=True)
    assert rows(body, "menu-attached-integrations")[0] == "1 請求書PDF 帳票データ(PDF+CSV)"
    page = lxml.html.document_fromstring(body)
    assert not list(page.get_element_by_id("menu-attached-integrations").iter("a"))
    assert "両方の権限が必要です" in body


def test_a_refused_menu_integration_save_says_so_once(app, login, sample):
    made, _ = make_settings(app, sample)
    editor = login("editor")
    response = editor.post(f"/dbs/{sample['database']}/menus/{sample['menu']}/integrations",
                           headers={"HX-Request": "true", "HX-Target": "menu-integrations-body"},
                           data={"setting_ids": [str(made["請求書CSV"])] * 2, "action": "save"})
    body = response.get_data(as_text=True)
    assert body.count("同じ連携が2回追加されています。") == 1
    assert "保存はされていません" in body
