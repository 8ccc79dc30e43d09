"""Splitting a run into API calls within 10,000 rows and 3 MB, never splitting one document's lines."""

from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    add_customers,
    execute,
    import_totals,
    imported_rows,
    menu_named,
    setting_named,
)

from webapp.extensions import db
from webapp.meisai import contract
from webapp.runs import export
from webapp.runs.models import CallStatus
from webapp.runs.operations import start_run


def lines(record_id, rows, size=10):
    return export.RecordLines(record_id, data=b"x" * size * rows, rows=rows)


def test_pack_keeps_each_records_lines_together():
    header = b"h\r\n"
    items = [lines(1, 2), lines(2, 3), lines(3, 2), lines(4, 1)]
    chunks = list(export.pack(items, header, max_rows=5, max_bytes=10_000))
    assert [c.record_ids for c in chunks] == [[1, 2], [3, 4]]
    assert [c.line_records for c in chunks] == [[1, 1, 2, 2, 2], [3, 3, 4]]
    assert all(c.rows <= 5 for c in chunks)


def test_pack_respects_the_byte_limit_including_the_header():
    header = b"h" * 10
    chunks = list(export.pack([lines(i, 1, size=30) for i in range(1, 5)], header, max_rows=100, max_bytes=70))
    assert [c.record_ids for c in chunks] == [[1, 2], [3, 4]]
    assert all(c.size <= 70 for c in chunks)


def test_pack_reports_a_record_too_large_for_one_call():
    items = [lines(1, 1), lines(2, 6), lines(3, 1)]
    out = list(export.pack(items, b"h", max_rows=5, max_bytes=10_000))
    too_big = [o for o in out if isinstance(o, export.RecordLines)]
    assert [o.record_id for o in too_big] == [2] and "上限" in too_big[0].problem
    assert [c.record_ids for c in out if isinstance(c, export.Chunk)] == [[1, 3]]


def test_25001_records_go_out_in_three_calls_all_complete(app, demo):
    with app.app_context():
        add_customers(25_001 - 30)
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "completed", run.error_message
        assert run.record_count == 25_001 and run.ok_count == 25_001
        assert [c.row_count for c in run.calls] == [10_000, 10_000, 5_001]
        assert all(c.status == CallStatus.COMPLETE for c in run.calls)
        assert all(f["size"] <= contract.MAX_FILE_BYTES for c in run.calls for f in c.files)
    assert imported_rows(demo) == 25_001
    assert import_totals(demo) == [10_000, 10_000, 5_001]


def test_three_megabyte_boundary_splits_by_size(app, demo):
    with app.app_context():
        db.session.execute(db.text("DELETE FROM records"))  # only the wide records
        db.session.commit()
        add_customers(5_500, address2="テストビル" * 50)  # about 630 bytes a line in Windows-31J: 3.4 MB
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "completed", run.error_message
        sizes = [c.files[0]["size"] for c in run.calls]
        assert len(sizes) == 2 and all(size <= contract.MAX_FILE_BYTES for size in sizes)
        line = (sizes[0] + sizes[1]) / 5_500
        assert sizes[0] > contract.MAX_FILE_BYTES - 2 * line  # the first file is filled up to the limit
        assert sum(c.row_count for c in run.calls) == 5_500
    assert imported_rows(demo) == 5_500
