"""Records: create, edit, delete, per-type validation with Japanese messages, files, 明細 rows."""

import io

import pytest

from webapp.databases.models import Record
from webapp.extensions import db


def field_name(sample, name):
    return f"f{sample['fields'][name]}"


def valid_form(sample, **overrides):
    data = {
        field_name(sample, "請求番号"): "INV-0100",
        field_name(sample, "備考"): "1行目\n2行目",
        field_name(sample, "請求金額"): "12,345",
        field_name(sample, "請求日"): "2026-11-30",
        field_name(sample, "連携日時"): "2026-11-30T09:15",
        field_name(sample, "連携ステータス"): "未連携",
        field_name(sample, "タグ"): ["郵送", "至急"],
        field_name(sample, "確認済"): "y",
        "details-0-" + field_name(sample, "品名"): "トナー",
        "details-0-" + field_name(sample, "数量"): "3",
        "action": "save",
    }
    data.update(overrides)
    return data


def record_count(app):
    with app.app_context():
        return db.session.query(Record).count()


def test_creating_a_record_stores_typed_values(app, login, sample):
    user = login("plain")
    response = user.post(f"/dbs/{sample['database']}/records/new?menu={sample['menu']}", data=valid_form(sample))
    assert response.status_code == 302
    with app.app_context():
        record = db.session.query(Record).order_by(Record.id.desc()).first()
        values = {name: record.data.get(str(fid)) for name, fid in sample["fields"].items()}
        assert values["請求番号"] == "INV-0100"
        assert values["請求金額"] == 12345
        assert values["請求日"] == "2026-11-30"
        assert values["連携日時"] == "2026-11-30 09:15"
        assert values["タグ"] == ["至急", "郵送"]  # kept in the options' order
        assert values["確認済"] is True
        assert record.details == [{str(sample["fields"]["品名"]): "トナー", str(sample["fields"]["数量"]): 3}]
    page = user.get(response.location).get_data(as_text=True)
    assert "INV-0100" in page and "12,345" in page and "トナー" in page


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("請求番号", "", "必須項目です"),
        ("請求番号", "x" * 256, "255文字以内"),
        ("請求番号", "改行\nあり", "改行は入力できません"),
        ("備考", "あ" * 10001, "10000文字以内"),
        ("請求金額", "十二", "数値で入力してください"),
        ("請求金額", "1" * 16, "15桁以内"),
        ("請求日", "2026-02-30", "存在する日付"),
        ("請求日", "来週", "YYYY-MM-DD"),
        ("連携日時", "2026-11-30 25:00", "YYYY-MM-DD HH:MM"),
        ("連携ステータス", "送信済", "選択肢にない値"),
        ("タグ", ["至急", "宅配"], "選択肢にない値です: 宅配"),
    ],
)
def test_invalid_value_shows_message_next_to_field_and_saves_nothing(app, login, sample, name, value, message):
    user = login("plain")
    before = record_count(app)
    response = user.post(f"/dbs/{sample['database']}/records/new", data=valid_form(sample, **{field_name(sample, name): value}))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert message in body
    assert f'id="{field_name(sample, name)}-errors"' in body  # rendered beside that field
    assert "保存はされていません" in body
    assert record_count(app) == before


def test_invalid_detail_cell_is_reported_on_its_row(app, login, sample):
    user = login("plain")
    before = record_count(app)
    data = valid_form(sample, **{"details-0-" + field_name(sample, "数量"): "three"})
    body = user.post(f"/dbs/{sample['database']}/records/new", data=data).get_data(as_text=True)
    assert "数値で入力してください" in body
    assert record_count(app) == before


def test_blank_detail_rows_are_dropped(app, login, sample):
    user = login("plain")
    data = valid_form(sample, **{"details-1-" + field_name(sample, "品名"): "", "details-1-" + field_name(sample, "数量"): ""})
    assert user.post(f"/dbs/{sample['database']}/records/new", data=data).status_code == 302
    with app.app_context():
        record = db.session.query(Record).order_by(Record.id.desc()).first()
        assert len(record.details) == 1


def test_add_row_action_re_renders_without_saving(app, login, sample):
    user = login("plain")
    before = record_count(app)
    response = user.post(
        f"/dbs/{sample['database']}/records/new", data=valid_form(sample, action="add_row"), headers={"HX-Request": "true", "HX-Target": "details-body"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="details-body">')  # only the fragment
    assert "details-1-" + field_name(sample, "品名") in body
    assert 'value="トナー"' in body  # what was typed is kept
    assert record_count(app) == before


def test_editing_keeps_unchanged_values_and_updates_search(app, login, sample):
    user = login("plain")
    url = f"/records/{sample['record']}/edit"
    page = user.get(url).get_data(as_text=True)
    assert 'value="INV-0001"' in page
    response = user.post(url, data=valid_form(sample, **{field_name(sample, "請求番号"): "INV-0001-改"}))
    assert response.status_code == 302
    listing = user.get(f"/menus/{sample['menu']}?q=0001-改").get_data(as_text=True)
    assert "INV-0001-改" in listing and "1件中" in listing


def test_deleting_a_record(app, login, sample):
    user = login("plain")
    assert user.post(f"/records/{sample['record']}/delete").status_code == 302
    assert user.get(f"/records/{sample['record']}").status_code == 404


@pytest.mark.parametrize("url", ["/records/999999", "/records/999999/edit", "/dbs/999/records/new", "/menus/999999",
                                 "/dbs/999/settings", "/records/1/files/999"])
def test_unknown_ids_answer_404_in_japanese(login, sample, url):
    response = login("admin").get(url)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "見つかりません" in body or "存在しない" in body or "ありません" in body
    assert "Traceback" not in body


def test_forged_csrf_token_is_refused_and_nothing_is_saved(app, login, sample):
    user = login("plain")
    before = record_count(app)
    response = user.post(f"/dbs/{sample['database']}/records/new", data=valid_form(sample, csrf_token="forged"))
    assert response.status_code == 400
    assert "不正な送信" in response.get_data(as_text=True)
    assert record_count(app) == before


def test_file_field_upload_download_and_replace(app, login, sample):
    user = login("plain")
    data = valid_form(sample)
    data[field_name(sample, "添付")] = (io.BytesIO(b"%PDF-1.4 test"), "見積書.pdf", "application/pdf")
    response = user.post(f"/dbs/{sample['database']}/records/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        record = db.session.query(Record).order_by(Record.id.desc()).first()
        record_id, stored = record.id, record.data[str(sample["fields"]["添付"])]
    assert stored["name"] == "見積書.pdf" and stored["size"] == 13
    download = user.get(f"/records/{record_id}/files/{sample['fields']['添付']}")
    assert download.status_code == 200 and download.data == b"%PDF-1.4 test"
    assert "attachment" in download.headers["Content-Disposition"]

    # Editing without a new file keeps it; ticking 削除 removes it.
    assert user.post(f"/records/{record_id}/edit", data=valid_form(sample)).status_code == 302
    assert user.get(f"/records/{record_id}/files/{sample['fields']['添付']}").status_code == 200
    clear = valid_form(sample, **{field_name(sample, "添付") + "_clear": "y"})
    assert user.post(f"/records/{record_id}/edit", data=clear).status_code == 302
    assert user.get(f"/records/{record_id}/files/{sample['fields']['添付']}").status_code == 404


def test_required_file_field_must_be_given(app, login, sample):
    from webapp.databases.models import Field

    with app.app_context():
        db.session.get(Field, sample["fields"]["添付"]).required = True
        db.session.commit()
    user = login("plain")
    before = record_count(app)
    body = user.post(f"/dbs/{sample['database']}/records/new", data=valid_form(sample)).get_data(as_text=True)
    assert "ファイルを選んでください" in body
    assert record_count(app) == before


def test_autofile_field_is_not_an_input(login, sample):
    body = login("plain").get(f"/dbs/{sample['database']}/records/new").get_data(as_text=True)
    assert f'name="{field_name(sample, "請求書PDF")}"' not in body
    assert "未生成" in body
