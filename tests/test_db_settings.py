"""DB設定: DBs, fields (types, options, order), menus (columns, filters, sort) and the tabs."""

import pytest
from conftest import TEST_DATABASE_URL

from webapp.databases.models import Database, Field, Menu
from webapp.extensions import db


def test_create_database_then_its_settings_open(login, users):
    editor = login("editor")
    response = editor.post("/dbs/new", data={"name": "見積書", "description": ""})
    assert response.status_code == 302
    page = editor.get(response.location).get_data(as_text=True)
    assert "見積書 のDB設定" in page and "基本設定" in page and "システム連携" in page


def test_duplicate_database_name_is_refused(login, sample):
    body = login("editor").post("/dbs/new", data={"name": "請求書"}).get_data(as_text=True)
    assert "DB名「請求書」は既に使われています。" in body


def test_overlong_database_name_is_refused(app, login, users):
    body = login("editor").post("/dbs/new", data={"name": "あ" * 101}).get_data(as_text=True)
    assert "100文字以内" in body
    with app.app_context():
        assert db.session.query(Database).count() == 0


def test_add_select_field_with_options(app, login, sample):
    editor = login("editor")
    response = editor.post(
        f"/dbs/{sample['database']}/fields/new",
        data={"name": "支払方法", "field_type": "select", "placement": "header", "origin": "input",
              "options": "振込\n口座振替\n\n現金"},
    )
    assert response.status_code == 302
    with app.app_context():
        field = db.session.query(Field).filter_by(name="支払方法").one()
        assert field.options == ["振込", "口座振替", "現金"]
        assert field.type_label == "選択肢(1件選択)"


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "区分", "field_type": "select", "options": ""}, "選択肢を1つ以上入力してください"),
        ({"name": "区分", "field_type": "select", "options": "A\nA"}, "選択肢「A」が重複しています"),
        ({"name": "請求番号", "field_type": "text"}, "項目名「請求番号」はこのDBで既に使われています"),
        ({"name": "証憑", "field_type": "file", "placement": "detail"}, "ファイルは明細項目にできません"),
        ({"name": "", "field_type": "text"}, "名前を入力してください"),
        ({"name": "区分", "field_type": "unknown"}, "Not a valid choice"),
    ],
)
def test_bad_field_definitions_are_refused(app, login, sample, data, message):
    data = {"placement": "header", "origin": "input", **data}
    with app.app_context():
        before = db.session.query(Field).count()
    response = login("editor").post(f"/dbs/{sample['database']}/fields/new", data=data)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    if message == "Not a valid choice":
        assert "正しくない選択肢" in body or "選択" in body
    else:
        assert message in body
    with app.app_context():
        assert db.session.query(Field).count() == before


def test_field_type_cannot_change_on_edit(app, login, sample):
    fid = sample["fields"]["請求金額"]
    response = login("editor").post(
        f"/dbs/{sample['database']}/fields/{fid}/edit",
        data={"name": "請求額", "field_type": "text", "placement": "detail", "origin": "input"},
    )
    assert response.status_code == 302
    with app.app_context():
        field = db.session.get(Field, fid)
        assert field.name == "請求額" and field.field_type == "number" and field.placement == "header"


def test_field_order_moves(app, login, sample):
    first = sample["fields"]["請求番号"]
    login("editor").post(f"/dbs/{sample['database']}/fields/{first}/move", data={"direction": "down"})
    with app.app_context():
        names = [f.name for f in db.session.get(Database, sample["database"]).header_fields]
        assert names[:2] == ["備考", "請求番号"]


def test_field_of_another_database_is_404(app, login, sample):
    other = login("editor").post("/dbs/new", data={"name": "別DB"})
    other_id = int(other.location.split("/")[2])
    response = login("editor").get(f"/dbs/{other_id}/fields/{sample['fields']['請求番号']}/edit")
    assert response.status_code == 404


def test_deleting_a_field_removes_it_from_menus(app, login, sample):
    fid = sample["fields"]["請求金額"]
    assert login("editor").post(f"/dbs/{sample['database']}/fields/{fid}/delete").status_code == 302
    with app.app_context():
        menu = db.session.get(Menu, sample["menu"])
        assert [f.name for f in menu.column_fields] == ["請求番号", "請求日"]


def test_deleting_a_database_removes_records(app, login, sample):
    assert login("editor").post(f"/dbs/{sample['database']}/delete").status_code == 302
    assert login("plain").get(f"/records/{sample['record']}").status_code == 404


def menu_post(sample, **overrides):
    f = sample["fields"]
    data = {
        "name": "未連携の請求書",
        "columns-0-field_id": str(f["請求番号"]),
        "columns-1-field_id": str(f["請求日"]),
        "filters-0-field_id": str(f["連携ステータス"]),
        "filters-0-operator": "eq",
        "filters-0-value": "未連携",
        "sort_field_id": str(f["請求日"]),
        "sort_desc": "1",
        "page_size": "20",
        "action": "save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_menu_with_columns_filter_and_sort(app, login, sample):
    response = login("editor").post(f"/dbs/{sample['database']}/menus/new", data=menu_post(sample))
    assert response.status_code == 302
    with app.app_context():
        menu = db.session.query(Menu).filter_by(name="未連携の請求書").one()
        assert [f.name for f in menu.column_fields] == ["請求番号", "請求日"]
        assert [(x.field.name, x.operator, x.value) for x in menu.filters] == [("連携ステータス", "eq", "未連携")]
        assert menu.sort_field.name == "請求日" and menu.sort_desc and menu.page_size == 20
    page = login("plain").get("/").get_data(as_text=True)
    assert "未連携の請求書" in page  # listed in the left panel


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"columns-0-field_id": None, "columns-1-field_id": None}, "表示する項目を1つ以上選んでください"),
        ({"columns-1-field_id": "__same__"}, "同じ項目が表示項目に2回選ばれています"),
        ({"filters-0-operator": "contains"}, "条件「含む」を使えません"),
        ({"filters-0-value": "送信済"}, "選択肢にない値"),
        ({"filters-0-operator": "range", "filters-0-field_id": "__date__", "filters-0-value": "2026-12-01",
          "filters-0-value_to": "2026-11-01"}, "開始が終了より前"),
        ({"filters-0-operator": "in", "filters-0-value": ""}, "選択肢を1つ以上選んでください"),
        ({"columns-0-field_id": "99999"}, "このDBにない項目"),
        ({"page_size": "1000"}, "Not a valid choice"),
    ],
)
def test_bad_menu_settings_are_refused(app, login, sample, overrides, message):
    f = sample["fields"]
    data = menu_post(sample)
    for key, value in overrides.items():
        if value == "__same__":
            value = str(f["請求番号"])
        elif value == "__date__":
            value = str(f["請求日"])
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    response = login("editor").post(f"/dbs/{sample['database']}/menus/new", data=data)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    if message == "Not a valid choice":
        assert "未連携の請求書" in body and "class=\"errors\"" in body
    else:
        assert message in body
    with app.app_context():
        assert db.session.query(Menu).filter_by(name="未連携の請求書").count() == 0


def test_menu_row_actions_rerender_without_saving(app, login, sample):
    editor = login("editor")
    headers = {"HX-Request": "true", "HX-Target": "menu-form-body"}
    body = editor.post(f"/dbs/{sample['database']}/menus/new", data=menu_post(sample, action="add_filter"),
                       headers=headers).get_data(as_text=True)
    assert body.lstrip().startswith('<div id="menu-form-body">')
    assert 'name="filters-1-field_id"' in body
    body = editor.post(f"/dbs/{sample['database']}/menus/new", data=menu_post(sample, action="up_column:1"),
                       headers=headers).get_data(as_text=True)
    first_select = body[body.index('name="columns-0-field_id"'):]
    first_select = first_select[: first_select.index("</select>")]
    assert f'<option selected value="{sample["fields"]["請求日"]}">請求日' in first_select
    with app.app_context():
        assert db.session.query(Menu).count() == 1


def test_menu_save_through_htmx_redirects_the_page(login, sample):
    response = login("editor").post(
        f"/dbs/{sample['database']}/menus/new", data=menu_post(sample), headers={"HX-Request": "true", "HX-Target": "menu-form-body"}
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].endswith(f"/dbs/{sample['database']}/settings")


def test_settings_tabs_swap_as_fragments(login, sample):
    editor = login("editor")
    full = editor.get(f"/dbs/{sample['database']}/settings?tab=integration").get_data(as_text=True)
    assert "<html" in full and "楽楽明細連携設定" in full
    fragment = editor.get(f"/dbs/{sample['database']}/settings?tab=integration",
                          headers={"HX-Request": "true", "HX-Target": "tab-body"}).get_data(as_text=True)
    assert "<html" not in fragment and "楽楽明細連携設定" in fragment
    assert 'hx-swap-oob="true" id="tab-integration"' in fragment


def test_ensure_indexes_command_rebuilds_the_per_field_indexes(app, sample):
    from sqlalchemy import text

    sql = ("SELECT indexname FROM pg_indexes WHERE tablename = 'records'" if TEST_DATABASE_URL
           else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'")
    name = f"ix_records_f{sample['fields']['請求番号']}"
    with app.app_context():
        db.session.execute(text(f"DROP INDEX {name}"))
        db.session.commit()
        assert name not in set(db.session.execute(text(sql)).scalars())
    result = app.test_cli_runner().invoke(args=["ensure-indexes"])
    assert result.exit_code == 0 and "項目のインデックスを確認しました" in result.output
    with app.app_context():
        names = set(db.session.execute(text(sql)).scalars())
    assert name in names
    if TEST_DATABASE_URL:  # descending lists read their own index (blanks last both ways)
        assert f"{name}d" in names
    result = app.test_cli_runner().invoke(args=["ensure-indexes", "--rebuild"])
    assert result.exit_code == 0 and "項目のインデックスを作り直しました" in result.output
    with app.app_context():
        assert set(db.session.execute(text(sql)).scalars()) == names
