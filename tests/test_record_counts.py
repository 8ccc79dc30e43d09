"""The 「N件中」 of a record list is counted once per change of the DB's records, and every change shows at once."""

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, update

from webapp.databases.models import Database, Record
from webapp.databases.operations import FilterSpec, MenuSpec, bulk_insert_records, create_menu
from webapp.databases.record_counts import records_of
from webapp.extensions import db


@pytest.fixture
def pending(app, listing):
    """A menu of the 未連携 records of the listing (41 of 61), sorted by 請求金額."""
    f = listing["fields"]
    with app.app_context():
        menu = create_menu(db.session.get(Database, listing["database"]), MenuSpec(
            name="送信待ち", column_field_ids=[f["請求番号"], f["連携ステータス"]], sort_field_id=f["請求金額"],
            filters=[FilterSpec(field_id=f["連携ステータス"], operator="eq", value="未連携")],
        ))
        db.session.commit()
        return {**listing, "pending": menu.id}


def shown_count(user, menu_id: int, **params) -> int:
    body = user.get(f"/menus/{menu_id}", query_string=params).get_data(as_text=True)
    return int(re.search(r'id="record-count">(\d+)件中', body).group(1))


def both_counts(user, pending) -> tuple[int, int]:
    """(請求書一覧, 送信待ち) as the user sees them."""
    return shown_count(user, pending["menu"]), shown_count(user, pending["pending"])


def invoice_form(pending, status: str) -> dict:
    f = pending["fields"]
    return {f"f{f['請求番号']}": "INV-0100", f"f{f['連携ステータス']}": status, f"details-0-f{f['品名']}": "用紙",
            "action": "save"}


@contextmanager
def count_statements(app):
    """The COUNT queries on records run meanwhile, as "filtered" (JSON values in the WHERE) or "plain"."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        if "count(" in statement.lower() and "records" in statement:
            seen.append("filtered" if "->>" in statement or "json_extract" in statement.lower() else "plain")

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            yield seen
        finally:
            event.remove(db.engine, "before_cursor_execute", note)


def test_form_saves_and_deletes_show_in_the_counts_at_once(app, login, pending):
    user = login("admin")
    assert both_counts(user, pending) == (61, 41)
    assert shown_count(user, pending["pending"], q="inv-00") == 41

    response = user.post(f"/dbs/{pending['database']}/records/new", data=invoice_form(pending, "未連携"))
    assert response.status_code == 302
    assert both_counts(user, pending) == (62, 42)
    assert shown_count(user, pending["pending"], q="inv-0100") == 1

    new_id = int(re.search(r"/records/(\d+)", response.location).group(1))
    response = user.post(f"/records/{new_id}/edit", data=invoice_form(pending, "連携済"))
    assert response.status_code == 302
    assert both_counts(user, pending) == (62, 41)
    assert shown_count(user, pending["pending"], q="inv-0100") == 0

    assert user.post(f"/records/{new_id}/delete").status_code == 302
    assert both_counts(user, pending) == (61, 41)


def test_bulk_writes_show_in_the_counts_at_once(app, login, pending):
    """The paths of imports, レコード更新 after a run and 自動生成ファイル: statements, not ORM objects."""
    user = login("plain")
    status = str(pending["fields"]["連携ステータス"])
    assert shown_count(user, pending["pending"]) == 41
    with app.app_context():
        rows = [{"id": r.id, "data": {**r.data, status: "連携済"}}
                for r in db.session.query(Record).order_by(Record.id).limit(70) if r.data.get(status) == "未連携"][:10]
        db.session.execute(update(Record), rows)
        db.session.commit()
    assert shown_count(user, pending["pending"]) == 31

    with app.app_context():
        database = db.session.get(Database, pending["database"])
        bulk_insert_records(database, [({status: "未連携"}, []) for _ in range(5)])
        db.session.commit()
    assert both_counts(user, pending) == (66, 36)


def test_a_rolled_back_change_leaves_the_count(app, login, pending):
    user = login("plain")
    assert shown_count(user, pending["pending"]) == 41
    with app.app_context():
        version = db.session.get(Database, pending["database"]).records_version
        db.session.execute(update(Record).values(data={}))
        db.session.rollback()
        assert db.session.get(Database, pending["database"]).records_version == version
    assert shown_count(user, pending["pending"]) == 41


def test_a_change_in_one_db_keeps_the_counts_of_another(app, pending):
    with app.app_context():
        other = Database(name="顧客", description="")
        db.session.add(other)
        db.session.commit()
        before = {d.id: d.records_version for d in db.session.query(Database)}
        record = db.session.query(Record).filter_by(database_id=pending["database"]).first()
        record.data = {**record.data, "x": 1}
        db.session.commit()
        after = {d.id: d.records_version for d in db.session.query(Database)}
    assert after[pending["database"]] == before[pending["database"]] + 1
    assert after[other.id] == before[other.id]


def test_paging_and_repeating_a_search_count_the_matches_once(app, login, pending):
    user = login("plain")
    with count_statements(app) as counted:
        for page in (1, 2, 1):
            shown_count(user, pending["menu"], page=page)
        for _ in range(3):
            shown_count(user, pending["menu"], q="inv-00")
        shown_count(user, pending["menu"], q="INV-00  ")  # the same terms: the same count
    assert len(counted) == 2


def test_blank_values_stay_last_in_both_sort_directions(app, login, listing):
    """連携日時 is blank in 31 of 61 records. Descending lists read an index of their own on PostgreSQL."""
    field = listing["fields"]["連携日時"]
    with app.app_context():
        menu = create_menu(db.session.get(Database, listing["database"]), MenuSpec(
            name="連携日時順", column_field_ids=[listing["fields"]["請求番号"], field], sort_field_id=field,
            page_size=20))
        db.session.commit()
        menu_id = menu.id
    user = login("plain")
    for desc in ("0", "1"):
        shown = []
        for page in (1, 2, 3, 4):
            body = user.get(f"/menus/{menu_id}", query_string={"sort": field, "desc": desc, "page": page}).get_data(
                as_text=True)
            shown += [when for _, when in re.findall(
                r"<tr>\s*<td><a[^>]*>\d+</a></td>\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>", body)]
        assert len(shown) == 61
        assert shown[30:] == [""] * 31
        assert shown[:30] == sorted(shown[:30], reverse=desc == "1") and "" not in shown[:30]


def test_updates_recount_only_the_lists_they_can_change(app, login, pending):
    """A run's レコード更新 rewrites records without adding any: a list without filters or keyword keeps its
    count, the 未連携 list is recounted (and right)."""
    user = login("plain")
    status = str(pending["fields"]["連携ステータス"])
    with count_statements(app) as counted:
        assert both_counts(user, pending) == (61, 41)
        rows = [{"id": r.id, "data": {**r.data, status: "連携済"}}
                for r in db.session.query(Record).filter_by(database_id=pending["database"]).order_by(Record.id)
                if r.data.get(status) == "未連携"][:5]
        db.session.execute(update(Record), rows, execution_options=records_of(pending["database"]))
        db.session.commit()
        assert both_counts(user, pending) == (61, 36)
        bulk_insert_records(db.session.get(Database, pending["database"]), [({status: "未連携"}, [])])
        db.session.commit()
        assert both_counts(user, pending) == (62, 37)
    assert counted == ["plain", "filtered", "filtered", "plain", "filtered"]
