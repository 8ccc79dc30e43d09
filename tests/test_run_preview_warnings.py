"""プレビュー warns (never blocks) about what is likely to fail: columns that differ from the last call 楽楽明細
imported, and 帳票 whose 顧客コード no successful 顧客データ run sent to that 楽楽明細."""

from __future__ import annotations

import re

from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    INVOICE_SETTING,
    PDF_SETTING,
    add_customers,
    execute,
    field_named,
    menu_named,
    records_of,
    run_url,
    setting_named,
)
from sqlalchemy import select

from webapp.extensions import db
from webapp.runs.models import SentCustomerCode
from webapp.runs.operations import start_run

HTMX = {"HX-Request": "true", "HX-Target": "run-dialog"}


def run_now(setting_name: str, menu_name: str):
    run = start_run(setting_named(setting_name), menu_named(menu_name), executor_id=None, enqueue=False)
    return execute(run.id)


def preview(app, login, menu_name: str, setting_name: str) -> str:
    response = login("user").post(run_url(app, menu_name, setting_name, "preview"), data={}, headers=HTMX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def invoice_codes() -> list[str]:
    """The 顧客コード of the invoices the 送信待ち menu shows, in its order."""
    from webapp.runs.operations import selected_record_ids

    code = field_named("請求書", "顧客コード")
    by_id = {r.id: r for r in records_of("請求書")}
    ids = selected_record_ids(setting_named(INVOICE_SETTING), menu_named(INVOICE_MENU))
    return [by_id[i].data[code.key] for i in ids]


def test_columns_changed_since_the_last_imported_call_are_shown_with_the_difference(app, demo, login):
    from webapp.databases.operations import FilterSpec, MenuSpec, update_menu

    with app.app_context():
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "completed"
        run_id = db.session.execute(select(SentCustomerCode.run_id)).scalars().first()
        add_customers(3)
    body = preview(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    assert 'id="preview-column-change"' not in body  # same columns as the call that was imported
    with app.app_context():
        menu = menu_named(CUSTOMER_MENU)
        names = [c.field.name for c in menu.columns]
        order = ["顧客名", "顧客コード"] + [n for n in names if n not in ("顧客名", "顧客コード", "部署名")] + ["連携ステータス"]
        ids = {f.name: f.id for f in menu.database.fields}
        filters = [FilterSpec(f.field_id, f.operator, f.value) for f in menu.filters]
        update_menu(menu, MenuSpec(name=menu.name, column_field_ids=[ids[n] for n in order], filters=filters,
                                   sort_field_id=menu.sort_field_id))
        db.session.commit()
    body = preview(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    warning = body.split('id="preview-column-change"')[1].split("</div>")[0]
    assert f"実行No.{run_id}" in warning
    assert "追加された列: 連携ステータス" in warning and "なくなった列: 部署名" in warning
    assert "列の順序が変わっています: 顧客名(2列目→1列目)、顧客コード(1列目→2列目)" in warning
    assert "前回(9列)" in warning and "今回(9列)" in warning
    assert "送信はできます" in warning
    # A warning, not a block: 実行 still starts the run.
    user = login("user")
    response = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={}, headers=HTMX)
    assert "実行を受け付けました" in response.get_data(as_text=True)


def test_no_column_warning_before_any_imported_call(app, demo, login):
    with app.app_context():
        setting_named(CUSTOMER_SETTING).import_setting_id = 99  # refused: nothing was imported with these columns
        db.session.commit()
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "error"
    assert 'id="preview-column-change"' not in preview(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)


def test_documents_of_customers_never_sent_to_this_meisai_are_counted_with_their_first_codes(app, demo, login):
    with app.app_context():
        codes = invoice_codes()
    body = preview(app, login, INVOICE_MENU, INVOICE_SETTING)
    warning = body.split('id="preview-unknown-customers"')[1].split("</div>")[0]
    assert f"{len(codes)}件のレコードの顧客コードは、この楽楽明細にまだ送信されていません" in warning
    shown = re.search(r"顧客コード(?:\(先頭\d+件\))?: ([^<]+)</p>", warning).group(1).split("、")
    assert shown == list(dict.fromkeys(codes))[:10]
    # Once the customers were sent by a successful 顧客データ run, the warning is gone.
    with app.app_context():
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "completed"
    assert 'id="preview-unknown-customers"' not in preview(app, login, INVOICE_MENU, INVOICE_SETTING)
    assert 'id="preview-unknown-customers"' not in preview(app, login, INVOICE_MENU, PDF_SETTING)


def test_a_customer_refused_by_meisai_or_sent_to_another_meisai_still_counts_as_never_sent(app, demo, login):
    from meisai_emulator.tenants import create_tenant
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations

    create_tenant(demo.app.extensions["meisai_emulator"].store, "other", "other-token-0123456789")
    with app.app_context():
        first_code = invoice_codes()[0]
        customers = records_of("顧客")
        code = field_named("顧客", "顧客コード")
        refused = next(r for r in customers if r.data[code.key] == first_code)
        refused.data = {**refused.data, field_named("顧客", "郵便番号").key: "郵便番号ではない"}
        menu = menu_named(CUSTOMER_MENU)
        other = save_setting(menu.database, SettingValues(
            name="別の楽楽明細へ顧客", base_url=f"{demo.root_url}other/", token="other-token-0123456789",
            data_kind=DataKind.CUSTOMER, import_setting_id=1))
        set_menu_integrations(menu, [setting_named(CUSTOMER_SETTING).id, other.id])
        db.session.commit()
        # Everyone reaches the other 楽楽明細; in ours the one customer is refused (its row fails).
        assert run_now("別の楽楽明細へ顧客", CUSTOMER_MENU).status == "partial"
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "partial"
        expected = invoice_codes().count(first_code)
    body = preview(app, login, INVOICE_MENU, INVOICE_SETTING)
    warning = body.split('id="preview-unknown-customers"')[1].split("</div>")[0]
    assert f"{expected}件のレコードの顧客コード" in warning and f": {first_code}</p>" in warning


def test_codes_of_runs_made_before_the_upgrade_are_filled_in(app, demo, login):
    from flask_migrate import downgrade, stamp, upgrade

    with app.app_context():
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "completed"
        before = set(db.session.execute(select(SentCustomerCode.base_url, SentCustomerCode.code)).all())
        assert len(before) == 30
        db.session.remove()
        stamp()
        downgrade(revision="0007")
        upgrade()
        after = set(db.session.execute(select(SentCustomerCode.base_url, SentCustomerCode.code)).all())
        assert after == before
