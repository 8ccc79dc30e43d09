"""In the browser: changing a setting's URL to another host asks for the API token again, at the token field
and in 接続テスト, and saving works once it is typed."""

import pytest
from helpers import browser_login
from playwright.sync_api import expect

from webapp.databases.models import Database
from webapp.extensions import db
from webapp.integrations.models import DataKind
from webapp.integrations.operations import SettingValues, save_setting

pytestmark = pytest.mark.browser
ORIGIN_CHANGED = "URLの接続先が変わったため、APIトークンを入力し直してください。"


@pytest.fixture
def setting_id(app, sample):
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        setting_id = save_setting(database, SettingValues(
            name="顧客を送る", base_url="https://acme.eco-serv.jp/acme/", token="tok-BROWSER-0123456789abcdef",
            data_kind=DataKind.CUSTOMER)).id
        db.session.commit()
        return setting_id


@pytest.mark.parametrize("size", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
def test_a_new_host_needs_the_token_typed_again(page, live_server, sample, setting_id, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    browser_login(page, live_server, "editor")
    page.goto(f"{live_server}/dbs/{sample['database']}/integrations/{setting_id}/edit")

    page.fill("#url", "https://other-tenant.example.com/acme/backadmin/top")
    page.locator("#url").press("Tab")  # leaving the field tidies the pasted admin URL (a re-render)
    expect(page.locator("#url")).to_have_value("https://other-tenant.example.com/acme/")
    page.get_by_role("button", name="接続テスト").click()
    expect(page.locator("#connection-result")).to_contain_text(ORIGIN_CHANGED)
    page.get_by_role("button", name="確定").click()
    token_row = page.locator(".form-row", has=page.locator("#token"))
    expect(token_row).to_contain_text(ORIGIN_CHANGED)
    expect(token_row).to_have_class("form-row has-error")
    token_row.scroll_into_view_if_needed()
    page.screenshot(path=f"test-results/token_origin_{size[0]}.png")

    page.fill("#token", "tok-NEW-TENANT-0123456789abcdef")
    page.get_by_role("button", name="確定").click()
    expect(page.locator(".flash-success")).to_contain_text("楽楽明細連携設定「顧客を送る」を保存しました")


def test_the_connection_test_answer_survives_the_re_render_of_leaving_the_url_field(page, live_server, sample,
                                                                                   setting_id):
    """Typing a URL and clicking 接続テスト at once fires two requests: the re-render of leaving the URL field and
    the test. The re-render is held here until the answer is shown, then let through: the answer must stay."""
    browser_login(page, live_server, "editor")
    edit_url = f"{live_server}/dbs/{sample['database']}/integrations/{setting_id}/edit"
    page.goto(edit_url)
    held = []
    page.route(edit_url, lambda route: held.append(route) if route.request.method == "POST" else route.continue_())

    page.fill("#url", "https://other-tenant.example.com/acme/")
    page.get_by_role("button", name="接続テスト").click()  # the click leaves the URL field: a re-render starts
    result = page.locator("#connection-result")
    expect(result).to_contain_text(ORIGIN_CHANGED)
    expect(result).to_contain_text("https://other-tenant.example.com")
    assert len(held) == 1
    with page.expect_response(lambda r: r.url == edit_url and r.request.method == "POST"):
        held.pop().continue_()
    page.unroute(edit_url)
    expect(page.locator("#url")).to_have_value("https://other-tenant.example.com/acme/")
    expect(result).to_contain_text(ORIGIN_CHANGED)
