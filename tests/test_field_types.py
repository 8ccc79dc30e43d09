"""Field types are one registry of type objects (webapp/databases/fieldtypes.py): adding a type is one class.

A test type registered here — 郵便番号, typed as 1234567 or １２３-４５６７, stored as 123-4567, shown as 〒123-4567,
sent as 1234567 — is offered in 項目タイプ, parsed by the record form with its own message, shown in the list and on
the record page, filtered by its own operators and exported by its own rule, with nothing else changed.
"""

from __future__ import annotations

import re

import pytest

from webapp.databases import fieldtypes
from webapp.databases.fieldtypes import OP_EQUALS, FieldKind, FieldValueError
from webapp.extensions import db


class PostalCodeKind(FieldKind):
    name, label = "test_postal", "郵便番号(テスト)"
    operators = (OP_EQUALS,)
    record_label = indexed = True

    def parse_text(self, text, options):
        digits = text.translate(str.maketrans("０１２３４５６７８９－", "0123456789-")).replace("-", "")
        if not re.fullmatch(r"\d{7}", digits):
            raise FieldValueError("郵便番号は7桁の数字で入力してください(例: 123-4567)。")
        return f"{digits[:3]}-{digits[3:]}"

    def display_text(self, value):
        return f"〒{value}"

    def csv_text(self, value):
        return value.replace("-", "")


@pytest.fixture
def postal_type():
    fieldtypes.register(PostalCodeKind)
    yield fieldtypes.kind_of(PostalCodeKind.name)
    del fieldtypes.FIELD_KINDS[PostalCodeKind.name]


def test_every_built_in_type_is_registered_in_the_order_of_the_choices(app):
    assert [k.name for k in fieldtypes.kinds()][:10] == [
        "text", "textarea", "number", "date", "datetime", "select", "multiselect", "checkbox", "file", "autofile"]


def test_a_new_type_is_one_class(app, login, sample, postal_type):
    from webapp.databases.models import Field, Menu, Record
    from webapp.databases.operations import FilterSpec, MenuSpec, update_menu
    from webapp.databases.query import menu_page
    from webapp.runs.export import plain_columns

    editor = login("editor")
    form_page = editor.get(f"/dbs/{sample['database']}/fields/new").get_data(as_text=True)
    assert '<option value="test_postal">郵便番号(テスト)</option>' in form_page
    response = editor.post(f"/dbs/{sample['database']}/fields/new", data={
        "name": "郵便番号", "field_type": "test_postal", "placement": "header", "origin": "input", "template": "invoice"})
    assert response.status_code == 302
    with app.app_context():
        postal = db.session.query(Field).filter_by(name="郵便番号").one()
        field_id, menu = postal.id, db.session.get(Menu, sample["menu"])
        update_menu(menu, MenuSpec(name=menu.name, column_field_ids=[c.field_id for c in menu.columns] + [field_id]))
        db.session.commit()

    edit_url = f"/records/{sample['record']}/edit"
    base = {f"f{sample['fields']['請求番号']}": "INV-0001", "action": "save"}
    refused = editor.post(edit_url, data={**base, f"f{field_id}": "12-34"}).get_data(as_text=True)
    assert "郵便番号は7桁の数字で入力してください" in refused
    assert editor.post(edit_url, data={**base, f"f{field_id}": "１２３-４５６７"}).status_code == 302
    assert "〒123-4567" in editor.get(f"/records/{sample['record']}").get_data(as_text=True)
    assert "〒123-4567" in editor.get(f"/menus/{sample['menu']}").get_data(as_text=True)

    with app.app_context():
        record = db.session.get(Record, sample["record"])
        assert record.data[str(field_id)] == "123-4567"
        menu = db.session.get(Menu, sample["menu"])
        postal = db.session.get(Field, field_id)
        column = plain_columns([postal])[0]
        assert column.csv(record.data[postal.key]) == "1234567"
        for value, expected in (("123-4567", 1), ("765-4321", 0)):
            update_menu(menu, MenuSpec(name=menu.name, column_field_ids=[c.field_id for c in menu.columns],
                                       filters=[FilterSpec(field_id=field_id, operator=OP_EQUALS, value=value)]))
            assert menu_page(menu).total == expected
        db.session.rollback()
