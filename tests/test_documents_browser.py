"""自動生成ファイル in a real browser: open a demo 請求書 record, view its PDF, 再生成.

Headless Debian Chromium through Playwright, against the app served over HTTP (live_server).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect
from pypdf import PdfReader

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results"


@pytest.fixture
def demo(app):
    from webapp.demo import seed_demo
    from webapp.extensions import db

    with app.app_context():
        assert seed_demo(customer_count=10, invoice_count=5)
        db.session.commit()


def test_open_a_record_and_view_its_pdf(page, live_server, demo):
    browser_login(page, live_server, "user")
    page.get_by_role("complementary", name="左パネル").get_by_role("link", name="請求書一覧", exact=True).click()
    page.locator("#record-table tbody tr").first.locator("td").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile(r"レコードNo\.\d+"))).to_be_visible()
    number = page.locator("dt", has_text="請求番号").locator("xpath=following-sibling::dd[1]").inner_text().strip()
    customer = page.locator("dt", has_text="取引先").locator("xpath=following-sibling::dd[1]").inner_text().strip()
    document = page.locator(".autofile")
    expect(document).to_contain_text("表示・ダウンロード時に作成します")  # the demo seed leaves PDFs to first use

    responses = []
    page.context.on("response", lambda r: responses.append(r) if "/documents/" in r.url else None)
    with page.expect_popup() as popup_info:
        document.get_by_role("link", name="PDFを表示").click()
    for _ in range(100):  # the new tab's response (Chromium shows or downloads the PDF: either way it comes)
        if responses:
            break
        page.wait_for_timeout(100)
    assert responses, "the PDF was not requested"
    response = responses[0]
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline")
    # The viewer keeps the bytes to itself: fetch the same URL with the tab's session to read them.
    pdf = page.request.get(response.url).body()
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert number in text and customer in re.sub(r"\s+", "", text)
    popup_info.value.close()

    page.reload()
    expect(document.get_by_role("link", name=f"{number}.pdf")).to_be_visible()
    expect(document).to_contain_text("最新の内容です")
    document.get_by_role("button", name="再生成").click()
    expect(page.locator(".flash-success")).to_contain_text(f"「請求書PDF」を再生成しました({number}.pdf)")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "record_pdf.png"), full_page=True)
