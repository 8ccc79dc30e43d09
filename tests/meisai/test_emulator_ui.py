"""The emulator's browser UI, driven in headless Chromium: what a developer sees after the product sent data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from meisai_testlib import customer_csv, customer_rows, minimal_pdf, report_csv, report_row

from webapp.meisai import CustomerImportParams, ImportKind, ReportImportParams, Upload, build_pdf_zip

pytestmark = pytest.mark.browser
POLL = {"first_interval": 0.05, "max_interval": 0.1, "timeout": 10}


@pytest.fixture
def sent(emulator):
    """What a few runs of the product would leave behind: customers, documents in each state, a PDF."""
    client = emulator.client()
    rows = customer_rows(3)
    rows.append(["", "コードなし", "", "", "", "", "", "", ""])
    customers = client.import_customers(
        customer_csv(rows), "顧客.csv", CustomerImportParams(memo="顧客の初回連携")
    )
    client.wait_for_import(ImportKind.CUSTOMERS, customers.import_id, **POLL)

    def reports(files, **params):
        accepted = client.import_reports(files, ReportImportParams(**params))
        client.wait_for_import(ImportKind.REPORTS, accepted.import_id, **POLL)

    reports([("請求書.csv", report_csv([report_row("C00001", "INV-1")]))])
    reports([("請求書.csv", report_csv([report_row("C00002", "INV-2")]))], skip_approval=True)
    scheduled = datetime(2099, 4, 1, 9, 30, tzinfo=UTC) - timedelta(hours=9)  # 2099/04/01 09:30 JST
    reports(
        [("請求書.csv", report_csv([report_row("C00003", "INV-3")]))],
        skip_approval=True,
        scheduled_at=scheduled,
    )
    reports(
        [("請求書.csv", report_csv([report_row("C00002", "INV-2", amount=20000)]))],
        replace=True,
        replace_send_mail=True,
        replace_post=True,
        skip_approval=True,
    )
    pdf = minimal_pdf("INV-4")
    reports([Upload("帳票.zip", build_pdf_zip([("C00001_INV-4.pdf", pdf)]))])
    return {"customer_csv": customer_csv(rows), "pdf": pdf}


def test_a_developer_can_follow_what_was_sent(emulator, sent, page):
    page.goto(emulator.root_url)
    assert page.get_by_role("heading", name="テナント一覧").is_visible()
    assert emulator.token not in page.content()
    page.get_by_role("link", name="demo", exact=True).click()

    # 取込履歴: parameters, state, row errors and the files as sent.
    page.get_by_role("heading", name="取込履歴").wait_for()
    customer_row = page.locator("tr", has_text="顧客の初回連携")
    assert "エラー" in customer_row.inner_text()
    assert "5行目 顧客コード: 必須です。" in customer_row.inner_text()
    with page.expect_download() as download:
        customer_row.get_by_role("link", name="顧客.csv").click()
    assert download.value.suggested_filename == "顧客.csv"
    assert open(download.value.path(), "rb").read() == sent["customer_csv"]

    # 顧客一覧 with Web利用, which the developer can switch to simulate a registered customer.
    page.get_by_role("link", name="顧客一覧").click()
    page.get_by_role("heading", name="顧客一覧（3件）").wait_for()
    with page.expect_navigation():
        page.get_by_label("Web利用 C00001").select_option("利用中")
    assert page.get_by_label("Web利用 C00001").input_value() == "利用中"
    assert emulator.client().search_customers("C00001")[0].web_status == "利用中"

    # 帳票一覧: every state, the replacement flags, the PDF.
    page.get_by_role("link", name="帳票一覧").click()
    page.get_by_role("heading", name="帳票一覧（4件）").wait_for()
    assert "承認待ち" in page.locator("tr", has_text="INV-1").inner_text()
    assert "予約（2099/04/01 09:30:00）" in page.locator("tr", has_text="INV-3").inner_text()
    replaced = page.locator("tr", has_text="INV-2").inner_text()
    assert "発行済" in replaced
    assert "通知メール: あり" in replaced and "郵送依頼: あり" in replaced and "FAX送信: なし" in replaced
    pdf_link = page.locator("tr", has_text="INV-4").get_by_role("link", name="PDFを表示")
    assert pdf_link.get_attribute("target") == "_blank"
    pdf = page.request.get(emulator.root_url.rstrip("/") + pdf_link.get_attribute("href"))
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body() == sent["pdf"]

    # 差替 history of INV-2, then approving INV-1.
    page.get_by_role("link", name="INV-2").click()
    history = page.locator("table", has_text="版").last.inner_text()
    assert "差替済" in history and "この版" in history
    page.get_by_role("link", name="帳票一覧").click()
    page.get_by_role("link", name="INV-1").click()
    page.get_by_role("button", name="承認して発行する").click()
    page.get_by_role("heading", name="帳票 INV-1（請求書） 発行済").wait_for()

    page.get_by_role("link", name="基本設定").click()
    assert "顧客コード、顧客名、郵便番号" in page.content()
    assert emulator.token not in page.content()
