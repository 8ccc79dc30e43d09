"""The record list: menu filters of every kind, keyword search, sort, paging and htmx fragments."""

import re

import pytest

from webapp.databases.models import Database, Menu
from webapp.databases.operations import FilterSpec, MenuSpec, create_menu, update_menu
from webapp.databases.query import menu_page
from webapp.extensions import db


def count_with(app, sample, filters, keyword=""):
    with app.app_context():
        menu = db.session.get(Menu, sample["menu"])
        update_menu(menu, MenuSpec(name=menu.name, column_field_ids=[c.field_id for c in menu.columns], filters=filters))
        return menu_page(db.session.get(Menu, sample["menu"]), keyword).total


@pytest.mark.parametrize(
    "name,operator,value,expected",
    [
        ("連携ステータス", "eq", "連携済", 20),
        ("連携ステータス", "in", ["連携済", "未連携"], 61),
        ("請求番号", "contains", "INV-00", 61),
        ("請求番号", "eq", "INV-0007", 1),
        ("請求金額", "range", [10000, 20000], 11),
        ("請求金額", "eq", 5000, 1),
        ("請求日", "range", ["2026-03-01", "2026-03-31"], 5),
        ("請求日", "range", [None, "2026-01-31"], 5),
        ("連携日時", "range", ["2026-11-02", "2026-11-02"], 3),
        ("連携日時", "empty", None, 31),
        ("連携日時", "not_empty", None, 30),
        ("タグ", "contains", "至急", 12),
        ("タグ", "empty", None, 49),
        ("確認済", "eq", True, 15),
        ("確認済", "eq", False, 46),
        ("備考", "contains", "東京", 6),
        ("添付", "empty", None, 61),
        ("品名", "contains", "トナー", 10),
    ],
)
def test_menu_filter_operators(app, listing, name, operator, value, expected):
    # 60 listed records + the sample's own record (INV-0001, 1100 yen, 未連携, no dates).
    filters = [FilterSpec(field_id=listing["fields"][name], operator=operator, value=value)]
    assert count_with(app, listing, filters) == expected


def test_filters_combine_with_keyword(app, listing):
    filters = [FilterSpec(field_id=listing["fields"]["連携ステータス"], operator="eq", value="連携済")]
    assert count_with(app, listing, filters, keyword="inv-003") == 4  # 0030, 0033, 0036, 0039; case-insensitive


def test_keyword_search_escapes_wildcards(app, listing):
    assert count_with(app, listing, [], keyword="%") == 0
    assert count_with(app, listing, [], keyword="_") == 0


def test_list_page_shows_menu_columns_paging_and_sort(login, listing):
    user = login("plain")
    body = user.get(f"/menus/{listing['menu']}").get_data(as_text=True)
    assert "61件中 1〜50件を表示" in body
    assert re.findall(r"<th[^>]*>\s*<a[^>]*>([^<]+)</a>", body)[:3] == ["請求番号", "請求金額", "請求日"]
    body = user.get(f"/menus/{listing['menu']}?page=2").get_data(as_text=True)
    assert "61件中 51〜61件を表示" in body
    body = user.get(f"/menus/{listing['menu']}?sort={listing['fields']['請求金額']}&desc=1").get_data(as_text=True)
    rows = re.findall(r"<td class=\"num\">([\d,]+)</td>", body)
    assert rows[:3] == ["60,000", "59,000", "58,000"]
    assert "請求金額 ▼" in body


def test_page_number_out_of_range_shows_the_last_page(login, listing):
    body = login("plain").get(f"/menus/{listing['menu']}?page=999").get_data(as_text=True)
    assert "61件中 51〜61件を表示" in body


def test_search_answers_with_a_fragment_for_htmx(login, listing):
    response = login("plain").get(
        f"/menus/{listing['menu']}?q=INV-005", headers={"HX-Request": "true", "HX-Target": "records"}
    )
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert "10件中 1〜10件を表示(「INV-005」で検索)" in body


def test_empty_search_result_says_so(login, listing):
    body = login("plain").get(f"/menus/{listing['menu']}?q=存在しない語").get_data(as_text=True)
    assert "該当するレコードはありません。" in body


def test_default_sort_of_the_menu_applies(app, login, listing):
    with app.app_context():
        database = db.session.get(Database, listing["database"])
        menu = create_menu(database, MenuSpec(
            name="金額順", column_field_ids=[listing["fields"]["請求金額"]], sort_field_id=listing["fields"]["請求金額"],
            sort_desc=False, page_size=20,
        ))
        db.session.commit()
        menu_id = menu.id
    body = login("plain").get(f"/menus/{menu_id}").get_data(as_text=True)
    assert re.findall(r"<td class=\"num\">([\d,]+)</td>", body)[:2] == ["1,000", "1,100"]
    assert "61件中 1〜20件を表示" in body


def test_submenu_placeholder_is_on_the_list(login, listing):
    body = login("plain").get(f"/menus/{listing['menu']}").get_data(as_text=True)
    assert "サブメニュー" in body and "システム連携状況確認" in body
