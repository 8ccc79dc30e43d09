"""What the 楽楽明細連携設定 form renders on every re-render: the manual's order and notes, the URL cut, the token.

(Typing in a real browser is in test_browser_settings_walk.py; these check the server's answers.)
"""

from __future__ import annotations

import lxml.html
import pytest
from test_integration_settings import TOKEN, base_form, saved, url

from webapp.extensions import db

FRAGMENT = {"HX-Request": "true", "HX-Target": "setting-form-body"}
COMMON = ["楽楽明細連携名", "URL", "APIトークン", "連携データ", "レポートメール", "送信先", "エラー時のみ送信する"]


def labels_in_order(body: str) -> list[str]:
    """The name of each setting in the order of the page (the first label of each form row)."""
    tree = lxml.html.document_fromstring(body if "<html" in body else f"<html><body>{body}</body></html>")
    names = []
    for row in tree.xpath('//div[contains(concat(" ", @class, " "), " form-row ")]'):
        label = row.find("label")
        if label is None:
            continue
        for required in label.xpath('.//span[@class="req"]'):
            required.drop_tree()
        names.append(label.text_content().strip())
    return names


# The manual's 設定項目 tables, with every conditional item switched on (レポートメール, 差替, 承認スキップ).
MANUAL_ORDER = {
    "customer": COMMON + ["取込設定ID", "「利用中」の上書き", "空白セルの上書き"],
    "report_csv": COMMON + ["帳票種別ID", "取込方法", "承認スキップ", "発行方法", "差替発行の通知メール",
                            "差替発行の郵送依頼", "差替発行のFAX送信", "承認フローID"],
    "report_pdf": COMMON + ["帳票種別ID", "連携対象PDF", "承認スキップ", "発行方法", "承認フローID"],
    "report_pdf_csv": COMMON + ["帳票種別ID", "連携対象PDF", "承認スキップ", "発行方法", "承認フローID"],
}


@pytest.mark.parametrize("kind", list(MANUAL_ORDER))
def test_items_follow_the_manual_order_with_record_update_last(login, sample, kind):
    editor = login("editor")
    body = editor.post(url(sample, "/new"), headers=FRAGMENT, data=base_form(
        sample, data_kind=kind, report_mail="1", import_method="replace", skip_approval="1", action="refresh",
        **{"record_updates-0-field_id": ""})).get_data(as_text=True)
    assert labels_in_order(body) == MANUAL_ORDER[kind]
    assert body.index("APIトークン") < body.index("連携データ") < body.index("<h2>レコード更新</h2>")


def test_help_carries_the_manuals_notes(login, sample):
    editor = login("editor")
    body = editor.post(url(sample, "/new"), headers=FRAGMENT, data=base_form(
        sample, import_method="replace", skip_approval="1", action="refresh")).get_data(as_text=True)
    for note in ("ファイル一括アップロード設定(有償)", "「帳票公開のお知らせ(差し替え時)」", "『利用中』",
                 "FAX送信オプションをお申し込みの場合のみ", "初期状態では郵送依頼が行われません",
                 "請求コードや請求番号など帳票データを特定する情報を必ず含めてください",
                 "「承認スキップ」が「する」の場合のみ", "「取込方法」が差替の場合のみ", "最大3個まで"):
        assert note in body, note


def test_a_pasted_admin_url_is_cut_when_the_field_is_left(login, sample):
    editor = login("editor")
    page = editor.get(url(sample, "/new")).get_data(as_text=True)
    url_input = lxml.html.document_fromstring(page).get_element_by_id("url")
    # Leaving the field sends the form again (htmx, on change) and the page shows the cut URL.
    assert url_input.get("hx-post") == url(sample, "/new") and url_input.get("hx-trigger") == "change"
    body = editor.post(url(sample, "/new"), headers=FRAGMENT, data=base_form(
        sample, url="https://acme.eco-serv.jp/acme/backadmin/top?tab=1", action="refresh")).get_data(as_text=True)
    assert lxml.html.fragment_fromstring(body, create_parent=True).get_element_by_id("url").value == \
        "https://acme.eco-serv.jp/acme/"
    # Not a URL the app accepts: left as typed, 確定 says why.
    body = editor.post(url(sample, "/new"), headers=FRAGMENT, data=base_form(
        sample, url="ftp://acme/x", action="refresh")).get_data(as_text=True)
    assert 'value="ftp://acme/x"' in body and "https://" in body


@pytest.mark.parametrize("change", [
    {"data_kind": "customer", "action": "refresh"},
    {"skip_approval": "1", "action": "refresh"},
    {"import_method": "replace", "action": "refresh"},
    {"action": "add_update"},
    {"name": "", "action": "save"},  # refused: 楽楽明細連携名 missing
])
def test_a_re_render_keeps_the_browsers_token_input_and_never_carries_the_token(app, login, sample, change):
    editor = login("editor")
    response = editor.post(url(sample, "/new"), headers=FRAGMENT, data=base_form(sample, **change))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert TOKEN not in body
    token_input = lxml.html.fragment_fromstring(body, create_parent=True).get_element_by_id("token")
    # htmx keeps the element the person typed into (hx-preserve needs the same id in the new fragment).
    assert token_input.get("hx-preserve") is not None and not token_input.get("value")
    with app.app_context():
        from webapp.integrations.models import IntegrationSetting

        assert db.session.query(IntegrationSetting).count() == 0


def test_a_fragment_replaces_the_page_banners(login, sample):
    """After a swap, the 「保存しました」 of an earlier step does not stay above the new outcome."""
    editor = login("editor")
    saved_response = editor.post(url(sample, "/new"), data=base_form(sample))
    page = editor.get(saved_response.headers["Location"]).get_data(as_text=True)
    assert "保存しました" in lxml.html.document_fromstring(page).get_element_by_id("flashes").text_content()
    edit = url(sample, f"/{saved(editor.client.application).id}/edit")
    body = editor.post(edit, headers=FRAGMENT, data=base_form(sample, name="")).get_data(as_text=True)
    fragment = lxml.html.fragment_fromstring(body, create_parent=True)
    banners = fragment.get_element_by_id("flashes")
    assert banners.get("hx-swap-oob") == "true" and banners.text_content().strip() == ""
    assert len(fragment.find_class("flash-error")) == 1
    assert "保存はされていません" in fragment.find_class("flash-error")[0].text_content()


def test_full_pages_keep_a_place_for_banners(login, sample):
    body = login("editor").get(url(sample, "/new")).get_data(as_text=True)
    assert lxml.html.document_fromstring(body).get_element_by_id("flashes").get("hx-swap-oob") is None
