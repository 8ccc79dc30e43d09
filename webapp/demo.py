"""`flask seed-demo`: realistic Japanese demo data (顧客 and 請求書 DBs, menus, an admin and a normal user).

Idempotent: it does nothing when the installation already has users, so `make run` can call it every start.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta

import click
from flask import Flask
from sqlalchemy import func, select

from .auth.models import User
from .auth.operations import create_user
from .databases.models import Database
from .databases.operations import (
    FieldSpec,
    FilterSpec,
    MenuSpec,
    add_field,
    bulk_insert_records,
    create_database,
    create_menu,
)
from .extensions import db

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木",
            "山口", "松本", "井上", "木村", "林", "斎藤", "清水"]
GIVEN = ["太郎", "花子", "健一", "美咲", "大輔", "陽子", "翔太", "由美", "誠", "恵", "拓也", "彩", "隆", "直子"]
COMPANY_STEMS = ["青葉", "桜", "富士", "東都", "北斗", "みなと", "朝日", "光", "大和", "中央", "日の出", "若葉", "丸善",
                 "双葉", "緑川", "白石", "関東", "三河", "浪速", "博多"]
COMPANY_KINDS = ["商事", "工業", "物産", "システム", "建設", "食品", "印刷", "電機", "運輸", "企画", "製作所", "ホールディングス"]
PREFS = [("東京都", "千代田区丸の内"), ("東京都", "港区芝浦"), ("大阪府", "大阪市北区梅田"), ("愛知県", "名古屋市中村区名駅"),
         ("福岡県", "福岡市博多区博多駅前"), ("北海道", "札幌市中央区北一条西"), ("神奈川県", "横浜市西区みなとみらい"),
         ("宮城県", "仙台市青葉区中央"), ("広島県", "広島市中区紙屋町"), ("京都府", "京都市下京区烏丸通")]
DEPARTMENTS = ["経理部", "総務部", "購買部", "営業部", "管理部"]
ITEMS = [("コピー用紙 A4 500枚", 550, 10), ("トナーカートリッジ", 12800, 10), ("保守サービス(月額)", 30000, 10),
         ("システム利用料", 50000, 10), ("お茶 500ml×24本", 2880, 8), ("コーヒー豆 1kg", 3200, 8),
         ("ボールペン 10本入", 980, 10), ("配送料", 1500, 10), ("設置作業費", 25000, 10), ("弁当(会議用)", 1080, 8)]
SUBJECTS = ["{month}月分 ご請求", "{month}月度 保守料金", "事務用品 {month}月分", "{month}月 ご利用料金"]


def _customers(count: int, rng: random.Random) -> list[dict]:
    customers = []
    for index in range(1, count + 1):
        pref, town = rng.choice(PREFS)
        company = f"株式会社{rng.choice(COMPANY_STEMS)}{rng.choice(COMPANY_KINDS)}"
        person = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
        customers.append({
            "顧客コード": f"C{index:05d}",
            "顧客名": company,
            "郵便番号": f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}",
            "住所1": f"{pref}{town}{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}",
            "住所2": rng.choice(["", f"{rng.choice(COMPANY_STEMS)}ビル{rng.randint(2, 20)}F", ""]),
            "会社名": company,
            "部署名": rng.choice(DEPARTMENTS),
            "担当者名": person,
            "メールアドレス": f"billing{index:05d}@example.co.jp",
            "連携ステータス": "未連携",
        })
    return customers


def seed_demo(customer_count: int = 1200, invoice_count: int = 1500, admin_password: str | None = None) -> bool:
    """Create the demo installation in the caller's transaction; returns False (and changes nothing) when users
    already exist."""
    if db.session.execute(select(func.count()).select_from(User)).scalar_one() > 0:
        return False
    rng = random.Random(20261124)
    admin_password = admin_password or os.environ.get("DEMO_ADMIN_PASSWORD") or "admin"
    # Demo logins are short on purpose (README); real users get the password rules.
    create_user("admin", admin_password, display_name="管理 太郎", email="admin@example.co.jp", is_admin=True,
                enforce_password_rules=False)
    create_user("user", os.environ.get("DEMO_USER_PASSWORD") or "user", display_name="営業 花子",
                email="user@example.co.jp", enforce_password_rules=False)
    create_user("keiri", os.environ.get("DEMO_USER_PASSWORD") or "keiri", display_name="経理 次郎",
                email="keiri@example.co.jp", can_db_settings=True, can_system_integration=True,
                enforce_password_rules=False)

    customers_db = create_database("顧客", "「楽楽明細」へ連携する顧客マスタです。")
    c = {}
    for name, kind, extra in [
        ("顧客コード", "text", {"required": True}), ("顧客名", "text", {"required": True}), ("郵便番号", "text", {}),
        ("住所1", "text", {}), ("住所2", "text", {}), ("会社名", "text", {}), ("部署名", "text", {}),
        ("担当者名", "text", {}), ("メールアドレス", "text", {}),
        ("連携ステータス", "select", {"options": ["未連携", "連携済"]}), ("連携日時", "datetime", {}),
        ("備考", "textarea", {}),
    ]:
        c[name] = add_field(customers_db, FieldSpec(name=name, field_type=kind, **extra))

    customers = _customers(customer_count, rng)
    bulk_insert_records(customers_db, [({c[k].key: v for k, v in customer.items()}, []) for customer in customers])

    customer_columns = ["顧客コード", "顧客名", "郵便番号", "住所1", "住所2", "会社名", "部署名", "担当者名", "メールアドレス"]
    create_menu(customers_db, MenuSpec(name="顧客一覧", column_field_ids=[c[n].id for n in customer_columns + ["連携ステータス"]],
                                       sort_field_id=c["顧客コード"].id))
    # Columns in the order of 楽楽明細's default customer import format (取込設定ID 1).
    create_menu(customers_db, MenuSpec(
        name="楽楽明細 未連携顧客", column_field_ids=[c[n].id for n in customer_columns],
        filters=[FilterSpec(field_id=c["連携ステータス"].id, operator="eq", value="未連携")],
        sort_field_id=c["顧客コード"].id,
    ))

    invoices_db = create_database("請求書", "顧客ごとの請求書です。明細行に品名・数量・単価を持ちます。")
    v = {}
    for name, kind, extra in [
        ("請求番号", "text", {"required": True}), ("顧客コード", "text", {"required": True}), ("取引先", "text", {}),
        ("請求日", "date", {"required": True}), ("請求金額", "number", {}), ("支払期限", "date", {}),
        ("件名", "text", {}), ("連携ステータス", "select", {"options": ["未連携", "連携済"]}),
        ("連携日時", "datetime", {}), ("請求書PDF", "autofile", {"settings": {"template": "invoice"}}), ("備考", "textarea", {}),
    ]:
        v[name] = add_field(invoices_db, FieldSpec(name=name, field_type=kind, **extra))
    for name, kind in [("品名", "text"), ("数量", "number"), ("単価", "number"), ("金額", "number"), ("税率", "select")]:
        options = ["10%", "8%"] if kind == "select" else []
        v[name] = add_field(invoices_db, FieldSpec(name=name, field_type=kind, placement="detail", options=options))

    rows = []
    start = date(2026, 4, 30)
    for number in range(1, invoice_count + 1):
        customer = customers[rng.randrange(len(customers))]
        issued = start + timedelta(days=30 * rng.randint(0, 7))
        details, base_by_rate = [], {}
        for _ in range(rng.randint(1, 4)):
            item, price, rate = rng.choice(ITEMS)
            quantity = rng.randint(1, 12)
            amount = price * quantity
            base_by_rate[rate] = base_by_rate.get(rate, 0) + amount
            details.append({v["品名"].key: item, v["数量"].key: quantity, v["単価"].key: price,
                            v["金額"].key: amount, v["税率"].key: f"{rate}%"})
        # As the 請求書PDF prints it: tax rounded down once per rate per invoice (インボイス制度), not per line.
        total = sum(base + base * rate // 100 for rate, base in base_by_rate.items())
        data = {
            v["請求番号"].key: f"INV-{issued:%Y%m}-{number:05d}",
            v["顧客コード"].key: customer["顧客コード"],
            v["取引先"].key: customer["会社名"],
            v["請求日"].key: issued.isoformat(),
            v["請求金額"].key: total,
            v["支払期限"].key: (issued + timedelta(days=30)).isoformat(),
            v["件名"].key: rng.choice(SUBJECTS).format(month=issued.month),
            v["連携ステータス"].key: "連携済" if issued.month < 8 else "未連携",
        }
        rows.append((data, details))
    bulk_insert_records(invoices_db, rows)

    create_menu(invoices_db, MenuSpec(
        name="請求書一覧",
        column_field_ids=[v[n].id for n in ["請求番号", "顧客コード", "取引先", "請求日", "請求金額", "支払期限", "件名", "連携ステータス"]],
        sort_field_id=v["請求日"].id, sort_desc=True,
    ))
    # Columns in the order of 楽楽明細's report type 請求書 (帳票種別ID 1): one CSV line per 明細 row.
    create_menu(invoices_db, MenuSpec(
        name="楽楽明細 送信待ち請求書",
        column_field_ids=[v[n].id for n in ["顧客コード", "請求番号", "請求日", "請求金額", "取引先", "件名", "品名", "数量", "単価", "金額"]],
        filters=[FilterSpec(field_id=v["連携ステータス"].id, operator="eq", value="未連携")],
        sort_field_id=v["請求番号"].id,
    ))
    seed_demo_integrations(customers_db, invoices_db, c, v)
    return True


DEFAULT_EMULATOR_URL = "http://127.0.0.1:5055/demo/"


def seed_demo_integrations(customers_db: Database, invoices_db: Database, c: dict, v: dict) -> None:
    """Ready 楽楽明細連携設定 for the emulator's demo tenant, attached to the 楽楽明細 menus.

    Only when MEISAI_DEMO_TOKEN is known (`make run` sets it): a setting without a working token is no demo.
    """
    from .integrations.models import RUN_TIME, DataKind
    from .integrations.operations import SettingValues, save_setting, set_menu_integrations
    from .meisai.client import normalize_base_url

    token = os.environ.get("MEISAI_DEMO_TOKEN")
    if not token:
        return
    base_url = normalize_base_url(os.environ.get("MEISAI_EMULATOR_URL", DEFAULT_EMULATOR_URL), allow_insecure_loopback=True)
    customer_setting = save_setting(customers_db, SettingValues(
        name="楽楽明細へ顧客を連携", base_url=base_url, token=token, data_kind=DataKind.CUSTOMER,
        report_mail=True, report_mail_to="executor", report_mail_errors_only=False,
        import_setting_id=1, overwrite_in_use=False, overwrite_blank=False,
        record_updates=[(c["連携ステータス"].id, "連携済"), (c["連携日時"].id, RUN_TIME)],
    ))
    invoice_setting = save_setting(invoices_db, SettingValues(
        name="楽楽明細へ請求書を発行(CSV)", base_url=base_url, token=token, data_kind=DataKind.REPORT_CSV,
        report_mail=True, report_mail_to="executor", report_mail_errors_only=True,
        report_type_id=1, import_method="new", skip_approval=True, issue_method="immediate",
        record_updates=[(v["連携ステータス"].id, "連携済"), (v["連携日時"].id, RUN_TIME)],
    ))
    # The PDF modes send the 請求書PDF field's documents (generated from the records when the run needs them).
    pdf_settings = [save_setting(invoices_db, SettingValues(
        name=name, base_url=base_url, token=token, data_kind=kind, report_mail=True, report_mail_to="executor",
        report_mail_errors_only=True, report_type_id=1, skip_approval=True, issue_method="immediate",
        pdf_field_id=v["請求書PDF"].id,
        record_updates=[(v["連携ステータス"].id, "連携済"), (v["連携日時"].id, RUN_TIME)],
    )) for name, kind in (("楽楽明細へ請求書を発行(PDF+CSV)", DataKind.REPORT_PDF_CSV),
                          ("楽楽明細へ請求書PDFを発行(PDFのみ)", DataKind.REPORT_PDF))]
    menus = {database.id: next(m for m in database.menus if m.name.startswith("楽楽明細"))
             for database in (customers_db, invoices_db)}
    set_menu_integrations(menus[customers_db.id], [customer_setting.id])
    set_menu_integrations(menus[invoices_db.id], [invoice_setting.id] + [s.id for s in pdf_settings])


def register_cli(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--customers", default=1200, show_default=True)
    @click.option("--invoices", default=1500, show_default=True)
    def seed_demo_command(customers: int, invoices: int) -> None:
        """Create demo users, DBs, menus and records (only in an empty installation)."""
        if seed_demo(customers, invoices):
            db.session.commit()
            click.echo(f"デモデータを作成しました(顧客 {customers}件、請求書 {invoices}件)。")
        else:
            click.echo("ユーザが既に存在するため、デモデータの作成をスキップしました。")
