"""Contract tests: the product's client against the running emulator, over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import free_port, wait_until
from meisai_testlib import (
    FAST_RETRY,
    customer_csv,
    customer_rows,
    minimal_pdf,
    report_csv,
    report_row,
)

from webapp.meisai import (
    CustomerImportParams,
    ImportKind,
    MeisaiAuthError,
    MeisaiClient,
    MeisaiConfigError,
    MeisaiConflict,
    MeisaiConnectionError,
    MeisaiFileError,
    MeisaiImportTimeout,
    MeisaiLimitError,
    MeisaiMaintenance,
    MeisaiNotFound,
    MeisaiParamError,
    MeisaiRateLimited,
    MeisaiServerError,
    MeisaiUrlError,
    ReportImportParams,
    RetryPolicy,
    Upload,
    build_csv,
    build_pdf_zip,
    contract,
    mask_token,
    normalize_base_url,
)

FAST_POLL = {"first_interval": 0.05, "max_interval": 0.1, "timeout": 10}


def import_customers(client: MeisaiClient, rows, **params):
    accepted = client.import_customers(customer_csv(rows), "顧客.csv", CustomerImportParams(**params))
    return client.wait_for_import(ImportKind.CUSTOMERS, accepted.import_id, **FAST_POLL)


def import_reports(client: MeisaiClient, files, **params):
    accepted = client.import_reports(files, ReportImportParams(**params))
    return accepted, client.wait_for_import(ImportKind.REPORTS, accepted.import_id, **FAST_POLL)


def jst_in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# --- customer import --------------------------------------------------------------------------------------


def test_customer_import_becomes_complete_and_customers_are_searchable(emulator):
    client = emulator.client()
    accepted = client.import_customers(
        customer_csv(customer_rows(3)), "顧客.csv", CustomerImportParams(memo="初回")
    )
    first = client.get_customer_import_state(accepted.import_id)
    final = client.wait_for_import("customers", accepted.import_id, **FAST_POLL)

    assert accepted.import_id > 0
    assert accepted.link_uri.endswith(f"/demo/backadmin/imports/{accepted.import_id}")
    assert first.status == "active"
    assert (final.status, final.total, final.succeeded, final.failed) == ("complete", 3, 3, 0)
    found = client.search_customers("C0000")
    assert [c.code for c in found] == ["C00001", "C00002", "C00003"]
    assert found[0].name == "顧客1"
    assert found[0].web_status == "未利用"
    assert found[0].attributes["mailAddress"] == "bill1@example.com"


def test_customer_import_sends_documented_parameters(emulator):
    client = emulator.client()
    client.import_customers(
        customer_csv(customer_rows(1)),
        "顧客.csv",
        CustomerImportParams(overwrite_in_use=True, overwrite_blank=True, memo="メモ", setting_id=1),
    )
    received = emulator.imports()[0]
    assert received["params"] == {
        "isUpdateInfo": 1,
        "updateBlank": 1,
        "skipFirst": 1,
        "importProcessName": "メモ",
        "settingId": 1,
    }
    assert received["files"] == [
        {
            "part": "files[0]",
            "filename": "顧客.csv",
            "contentType": "text/csv; charset=Windows-31J",
            "size": len(customer_csv(customer_rows(1))),
        }
    ]


def test_rows_with_errors_are_reported_and_the_others_imported(emulator):
    client = emulator.client()
    rows = customer_rows(3)
    rows[1][0] = ""  # no 顧客コード
    rows[2][2] = "1000001x"  # bad 郵便番号
    state = import_customers(client, rows)

    assert (state.status, state.total, state.succeeded, state.failed) == ("error", 3, 1, 2)
    # Row numbers count the header as row 1, so they point at the line of the CSV that was sent.
    assert [(e.row, e.name) for e in state.row_errors] == [(3, "顧客コード"), (4, "郵便番号")]
    assert [c.code for c in client.search_customers("C0000")] == ["C00001"]


def test_in_use_customers_are_only_overwritten_when_allowed(emulator):
    client = emulator.client()
    import_customers(client, customer_rows(1))
    emulator.set_web_status("C00001", "利用中")
    renamed = customer_rows(1)
    renamed[0][1] = "新しい名前"

    refused = import_customers(client, renamed, overwrite_in_use=False)
    assert refused.status == "error"
    assert refused.row_errors[0].name == "Web利用"
    assert client.search_customers("C00001")[0].name == "顧客1"

    allowed = import_customers(client, renamed, overwrite_in_use=True)
    assert allowed.status == "complete"
    assert client.search_customers("C00001")[0].name == "新しい名前"


def test_blank_cells_keep_or_clear_stored_values_as_configured(emulator):
    client = emulator.client()
    import_customers(client, customer_rows(1))
    blank_mail = customer_rows(1)
    blank_mail[0][8] = ""

    import_customers(client, blank_mail, overwrite_blank=False)
    assert client.search_customers("C00001")[0].attributes["mailAddress"] == "bill1@example.com"

    import_customers(client, blank_mail, overwrite_blank=True)
    assert client.search_customers("C00001")[0].attributes["mailAddress"] == ""


def test_ten_thousand_rows_of_exactly_three_megabytes_are_accepted(emulator):
    client = emulator.client()
    csv_bytes = _csv_of_exact_size(contract.MAX_ROWS_PER_FILE, contract.MAX_FILE_BYTES)
    assert len(csv_bytes) == contract.MAX_FILE_BYTES

    accepted = client.import_customers(csv_bytes, "顧客.csv")
    state = client.wait_for_import("customers", accepted.import_id, **FAST_POLL)

    assert (state.status, state.total, state.succeeded) == ("complete", 10_000, 10_000)


def test_ten_thousand_and_one_rows_are_refused_with_e_limit(emulator):
    client = emulator.client()
    with pytest.raises(MeisaiLimitError) as caught:
        client.import_customers(customer_csv(customer_rows(10_001)), "顧客.csv")

    error = caught.value
    assert (error.http_status, error.code) == (400, "E_LIMIT")
    assert error.descriptions[0].name == "files[0]"
    assert error.attempts == 1
    assert emulator.imports() == []


def test_one_byte_over_three_megabytes_is_refused_with_e_limit(emulator):
    client = emulator.client()
    csv_bytes = _csv_of_exact_size(100, contract.MAX_FILE_BYTES + 1)

    with pytest.raises(MeisaiLimitError) as caught:
        client.import_customers(csv_bytes, "顧客.csv")

    assert (caught.value.http_status, caught.value.code) == (413, "E_LIMIT")
    assert "上限" in caught.value.user_message
    assert emulator.imports() == []


def test_a_utf8_csv_is_refused_as_not_windows_31j(emulator):
    client = emulator.client()
    utf8 = customer_csv(customer_rows(2)).decode("cp932").encode("utf-8")

    with pytest.raises(MeisaiFileError) as caught:
        client.import_customers(utf8, "顧客.csv")

    assert (caught.value.http_status, caught.value.code) == (400, "E_FILE")
    assert "Windows-31J" in caught.value.message
    assert emulator.imports() == []


def test_unknown_import_format_is_not_found(emulator):
    with pytest.raises(MeisaiNotFound) as caught:
        emulator.client().import_customers(
            customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams(setting_id=9)
        )
    assert caught.value.code == "E_NOT_FOUND"
    assert caught.value.descriptions[0].name == "settingId"


def test_a_bad_parameter_is_named_and_never_retried(emulator):
    client = emulator.client()
    with pytest.raises(MeisaiParamError) as caught:
        client.import_customers(
            customer_csv(customer_rows(1)), "顧客.csv", {"isUpdateInfo": 5, "updateBlank": 2}
        )

    assert (caught.value.http_status, caught.value.code) == (400, "E_PARAM")
    assert [d.name for d in caught.value.descriptions] == ["isUpdateInfo"]
    assert "isUpdateInfo" in caught.value.user_message
    assert len(emulator.exchanges) == 1


def test_state_of_an_unknown_import_is_not_found(emulator):
    client = emulator.client()
    accepted = client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    with pytest.raises(MeisaiNotFound):
        client.get_customer_import_state(accepted.import_id + 100)
    with pytest.raises(MeisaiNotFound):
        client.get_report_import_state(accepted.import_id)  # a customer import is not a report import


# --- document import --------------------------------------------------------------------------------------


@pytest.fixture
def customers(emulator):
    import_customers(emulator.client(), customer_rows(3))
    return ["C00001", "C00002", "C00003"]


def test_document_rows_with_the_same_number_form_one_pending_document(emulator, customers):
    rows = [
        report_row("C00001", "INV-1", item="作業費", amount=1000),
        report_row("C00001", "INV-1", item="交通費", amount=200),
        report_row("C00002", "INV-2"),
    ]
    _, state = import_reports(emulator.client(), [("請求書.csv", report_csv(rows))])

    assert (state.status, state.total, state.succeeded) == ("complete", 3, 3)
    documents = emulator.current_documents()
    assert documents["INV-1"]["state"] == "承認待ち"
    assert [line["品名"] for line in documents["INV-1"]["lines"]] == ["作業費", "交通費"]
    assert documents["INV-1"]["header"]["取引先"] == "株式会社サンプル"
    assert documents["INV-2"]["customerCode"] == "C00002"


def test_skipping_approval_issues_immediately(emulator, customers):
    import_reports(
        emulator.client(),
        [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))],
        skip_approval=True,
        approval_flow_id=2,
    )
    document = emulator.current_documents()["INV-1"]
    assert document["state"] == "発行済"
    assert document["approvalFlowId"] == 2


def test_scheduled_documents_become_issued_when_their_time_comes(emulator, customers):
    from meisai_emulator.processing import promote_scheduled

    moment = jst_in(3600)
    import_reports(
        emulator.client(),
        [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))],
        skip_approval=True,
        scheduled_at=moment,
    )
    before = emulator.current_documents()["INV-1"]
    assert before["state"] == "予約"
    scheduled = moment.replace(microsecond=0, tzinfo=None)
    assert before["scheduledAt"] == scheduled.isoformat() + "Z"

    # The emulator's clock is passed in: a second before the time nothing changes, at the time it is issued.
    store = emulator.app.extensions["meisai_emulator"].store
    promote_scheduled(store, now=scheduled - timedelta(seconds=1))
    assert emulator.current_documents()["INV-1"]["state"] == "予約"
    promote_scheduled(store, now=scheduled)
    after = emulator.current_documents()["INV-1"]
    assert (after["state"], after["issuedAt"]) == ("発行済", before["scheduledAt"])


def test_scheduled_issue_date_in_the_past_is_refused(emulator, customers):
    with pytest.raises(MeisaiParamError) as caught:
        emulator.client().import_reports(
            [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))],
            ReportImportParams(skip_approval=True, scheduled_at=jst_in(-60)),
        )
    assert [d.name for d in caught.value.descriptions] == ["publicationDate"]
    assert emulator.imports()[-1]["kind"] == "customers"  # no report import was created


def test_skipping_approval_needs_a_flow_marked_to_skip(emulator, customers):
    files = [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))]
    client = emulator.client()
    with pytest.raises(MeisaiParamError) as caught:
        client.import_reports(files, ReportImportParams(skip_approval=True, approval_flow_id=1))
    assert caught.value.descriptions[0].name == "approvalFlowId"
    with pytest.raises(MeisaiNotFound):
        client.import_reports(files, ReportImportParams(approval_flow_id=99))


def test_report_parameters_are_checked_against_each_other(emulator, customers):
    files = [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))]
    client = emulator.client()
    with pytest.raises(MeisaiParamError) as missing:
        client.import_reports(files, {"reportTypeId": 1})
    with pytest.raises(MeisaiParamError) as not_allowed:
        client.import_reports(files, {"isNewIssues": 1, "pdfIssueType": 0, "isSendMail": 1})
    with pytest.raises(MeisaiNotFound) as unknown_type:
        client.import_reports(files, ReportImportParams(report_type_id=7))

    assert [d.name for d in missing.value.descriptions] == ["isNewIssues"]
    assert {d.name for d in not_allowed.value.descriptions} == {"pdfIssueType", "isSendMail"}
    assert unknown_type.value.descriptions[0].name == "reportTypeId"


def test_replacement_keeps_history_and_records_the_flags(emulator, customers):
    client = emulator.client()
    import_reports(client, [("請求書.csv", report_csv([report_row("C00001", "INV-1", amount=1000)]))])
    _, state = import_reports(
        client,
        [("請求書.csv", report_csv([report_row("C00001", "INV-1", amount=1200)]))],
        replace=True,
        replace_send_mail=True,
        replace_fax=True,
    )

    assert state.status == "complete"
    versions = [d for d in emulator.documents() if d["documentNo"] == "INV-1"]
    old, new = versions
    assert old["replacedAt"] is not None and old["header"]["取引金額"] == "1000"
    assert new["replacedAt"] is None and new["header"]["取引金額"] == "1200"
    assert (new["isReplacement"], new["sendMail"], new["postRequest"], new["sendFax"]) == (
        True,
        True,
        False,
        True,
    )
    assert new["replacesId"] == old["id"]


def test_replacing_a_missing_document_number_fails_that_document(emulator, customers):
    _, state = import_reports(
        emulator.client(), [("請求書.csv", report_csv([report_row("C00001", "NO-SUCH")]))], replace=True
    )
    assert (state.status, state.failed) == ("error", 1)
    assert state.row_errors[0].name == "帳票No"
    assert "NO-SUCH" not in emulator.current_documents()


def test_new_issue_with_an_existing_number_fails_and_unknown_customers_fail(emulator, customers):
    client = emulator.client()
    import_reports(client, [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))])
    _, state = import_reports(
        client,
        [
            (
                "請求書.csv",
                report_csv(
                    [
                        report_row("C00001", "INV-1"),
                        report_row("NOBODY", "INV-9"),
                        report_row("C00002", "INV-2"),
                    ]
                ),
            )
        ],
    )
    assert (state.status, state.total, state.succeeded, state.failed) == ("error", 3, 1, 2)
    assert {(e.row, e.name) for e in state.row_errors} == {(2, "帳票No"), (3, "顧客コード")}
    assert set(emulator.current_documents()) == {"INV-1", "INV-2"}


def test_documents_without_a_number_get_a_generated_one(emulator, customers):
    accepted, _ = import_reports(emulator.client(), [("請求書.csv", report_csv([report_row("C00003", "")]))])
    expected = f"R01{accepted.import_id:06d}_C00003"
    assert list(emulator.current_documents()) == [expected]


def test_pdf_zip_is_joined_to_csv_rows_by_customer_code(emulator, customers):
    pdfs = {
        contract.pdf_member_name("C00001", "INV-1"): minimal_pdf("one"),
        contract.pdf_member_name("C00002", "INV-2"): minimal_pdf("two"),
    }
    zip_bytes = build_pdf_zip(pdfs.items())
    csv_bytes = report_csv([report_row("C00002", "INV-2"), report_row("C00001", "INV-1")])
    _, state = import_reports(
        emulator.client(), [Upload("帳票.zip", zip_bytes), Upload("帳票.csv", csv_bytes)], skip_approval=True
    )

    assert state.status == "complete"
    documents = emulator.current_documents()
    assert documents["INV-1"]["pdfName"] == "C00001_INV-1.pdf"
    assert documents["INV-2"]["pdfName"] == "C00002_INV-2.pdf"
    served = requests.get(f"{emulator.base_url}backadmin/documents/{documents['INV-2']['id']}/pdf", timeout=5)
    assert served.headers["Content-Type"] == "application/pdf"
    assert served.content == pdfs["C00002_INV-2.pdf"]


def test_a_csv_row_without_its_pdf_fails(emulator, customers):
    zip_bytes = build_pdf_zip([("C00001_INV-1.pdf", minimal_pdf())])
    csv_bytes = report_csv([report_row("C00001", "INV-1"), report_row("C00002", "INV-2")])
    _, state = import_reports(
        emulator.client(), [Upload("帳票.zip", zip_bytes), Upload("帳票.csv", csv_bytes)]
    )
    assert (state.status, state.failed) == ("error", 1)
    assert state.row_errors[0].row == 3
    assert "C00002_INV-2.pdf" in state.row_errors[0].msg


def test_pdf_only_import_makes_one_document_per_pdf(emulator, customers):
    zip_bytes = build_pdf_zip([("C00001_INV-1.pdf", minimal_pdf()), ("C00003.pdf", minimal_pdf())])
    accepted, state = import_reports(emulator.client(), [Upload("帳票.zip", zip_bytes)])
    assert (state.status, state.total) == ("complete", 2)
    assert set(emulator.current_documents()) == {"INV-1", f"R01{accepted.import_id:06d}_C00003"}


def test_a_zip_holding_something_else_than_pdfs_is_refused(emulator, customers):
    client = emulator.client()
    fake_pdf = build_pdf_zip([("C00001_INV-1.pdf", b"not a pdf at all")])
    with pytest.raises(MeisaiFileError) as not_pdf:
        client.import_reports([Upload("帳票.zip", fake_pdf)], ReportImportParams())
    with pytest.raises(MeisaiFileError) as not_zip:
        client.import_reports([Upload("帳票.zip", b"PK\x03\x04 broken")], ReportImportParams())
    assert not_pdf.value.descriptions[0].value == "C00001_INV-1.pdf"
    assert "ZIP" in not_zip.value.message


def test_pdf_imports_only_accept_new_issues(emulator, customers):
    zip_bytes = build_pdf_zip([("C00001_INV-1.pdf", minimal_pdf())])
    with pytest.raises(MeisaiParamError) as caught:
        emulator.client().import_reports([Upload("帳票.zip", zip_bytes)], ReportImportParams(replace=True))
    assert caught.value.descriptions[0].name == "isNewIssues"


# --- delete -----------------------------------------------------------------------------------------------


def test_deleting_a_pending_import_withdraws_its_documents(emulator, customers):
    client = emulator.client()
    accepted, _ = import_reports(client, [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))])

    client.delete_report_import(accepted.import_id)

    assert emulator.current_documents() == {}
    with pytest.raises(MeisaiNotFound):
        client.get_report_import_state(accepted.import_id)
    with pytest.raises(MeisaiNotFound):
        client.delete_report_import(accepted.import_id)


def test_deleting_an_import_with_issued_documents_is_a_conflict(emulator, customers):
    client = emulator.client()
    accepted, _ = import_reports(
        client, [("請求書.csv", report_csv([report_row("C00001", "INV-1")]))], skip_approval=True
    )
    with pytest.raises(MeisaiConflict) as caught:
        client.delete_report_import(accepted.import_id)
    assert (caught.value.http_status, caught.value.code) == (409, "E_CONFLICT")
    assert "INV-1" in emulator.current_documents()


def test_deleting_a_replacement_restores_the_previous_version(emulator, customers):
    client = emulator.client()
    import_reports(client, [("請求書.csv", report_csv([report_row("C00001", "INV-1", amount=1000)]))])
    replacement, _ = import_reports(
        client, [("請求書.csv", report_csv([report_row("C00001", "INV-1", amount=1200)]))], replace=True
    )
    client.delete_report_import(replacement.import_id)
    assert emulator.current_documents()["INV-1"]["header"]["取引金額"] == "1000"


# --- errors, maintenance and retries ----------------------------------------------------------------------


def test_a_wrong_token_is_an_auth_error_and_not_retried(emulator):
    client = emulator.client(token="wrong-token-000000000000")
    with pytest.raises(MeisaiAuthError) as caught:
        client.search_customers("x")
    assert (caught.value.http_status, caught.value.code) == (401, "E_AUTH")
    assert len(emulator.exchanges) == 1


def test_maintenance_is_retried_then_reported(emulator):
    emulator.set_faults(maintenance="json")
    with pytest.raises(MeisaiMaintenance) as caught:
        emulator.client().search_customers("x")
    assert (caught.value.http_status, caught.value.code) == (503, "E_MAINTENANCE")
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert "メンテナンス" in caught.value.user_message


def test_a_200_html_maintenance_page_is_treated_as_maintenance(emulator):
    emulator.set_faults(maintenance="html")
    with pytest.raises(MeisaiMaintenance) as caught:
        emulator.client().import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    assert caught.value.http_status == 200
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert caught.value.outcome_unknown is False


def test_an_import_posted_during_maintenance_succeeds_once_it_ends(emulator):
    emulator.set_faults(next_count=3, next_fault="maintenance")
    client = emulator.client(retry=RetryPolicy(max_attempts=20, base_delay=0.05, max_delay=0.1, total_time=5))

    accepted = client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")

    assert [e.http_status for e in emulator.exchanges] == [503, 503, 503, 200]
    assert [i["importId"] for i in emulator.imports()] == [accepted.import_id]  # imported exactly once


def test_server_errors_are_retried_and_an_unanswered_post_creates_nothing(emulator):
    emulator.set_faults(failure_rate=1.0)
    with pytest.raises(MeisaiServerError) as caught:
        emulator.client().import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    assert caught.value.http_status == 500
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert caught.value.outcome_unknown is False
    assert emulator.imports() == []


def test_rate_limited_calls_wait_and_go_through(emulator):
    emulator.set_faults(rate_limit=2, rate_window_s=1)
    client = emulator.client(retry=RetryPolicy(max_attempts=20, base_delay=0.1, max_delay=0.3, total_time=5))
    for _ in range(3):
        client.search_customers("x")
    statuses = [e.http_status for e in emulator.exchanges]
    assert 429 in statuses
    assert statuses.count(200) == 3


def test_rate_limit_error_carries_the_code_when_retries_run_out(emulator):
    emulator.set_faults(rate_limit=1, rate_window_s=60)
    client = emulator.client()
    client.search_customers("x")
    with pytest.raises(MeisaiRateLimited) as caught:
        client.search_customers("x")
    assert (caught.value.http_status, caught.value.code) == (429, "E_RATE")
    assert caught.value.retry_after is not None


def test_a_post_that_timed_out_after_sending_is_not_retried_and_flagged_unknown(emulator):
    emulator.set_faults(latency_ms=1500)
    client = emulator.client(read_timeout=0.5)
    with pytest.raises(MeisaiConnectionError) as caught:
        client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")

    assert caught.value.outcome_unknown is True
    assert len(emulator.exchanges) == 1
    assert "可能性" in caught.value.user_message
    # And rightly so: the emulator did accept it once its latency had passed.
    wait_until(emulator.imports, timeout=10, message="the emulator never stored the import")


def test_a_slow_state_call_is_retried_because_reading_is_safe(emulator):
    client = emulator.client(read_timeout=0.3)
    accepted = client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    emulator.set_faults(state_latency_ms=600)
    with pytest.raises(MeisaiConnectionError) as caught:
        client.get_customer_import_state(accepted.import_id)
    assert caught.value.outcome_unknown is False
    assert caught.value.attempts > 1


def test_a_refused_connection_is_retried_within_the_time_budget():
    client = MeisaiClient(
        f"http://127.0.0.1:{free_port()}/demo/",
        "token-0123456789abcdef",
        allow_insecure_loopback=True,
        retry=RetryPolicy(max_attempts=50, base_delay=0.1, max_delay=0.4, total_time=1.0),
    )
    started = time.monotonic()
    with pytest.raises(MeisaiConnectionError) as caught:
        client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    assert time.monotonic() - started < 2.0
    assert caught.value.attempts > 1
    assert caught.value.outcome_unknown is False  # nothing was sent: safe to run again


def test_waiting_survives_maintenance_while_polling(emulator):
    client = emulator.client()
    accepted = client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    # More 503s than one state call retries: the call gives up, and the wait goes on polling.
    emulator.set_faults(next_count=FAST_RETRY.max_attempts + 1, next_fault="maintenance", next_on="state")

    state = client.wait_for_import("customers", accepted.import_id, **FAST_POLL)

    assert state.status == "complete"
    polls = [e.http_status for e in emulator.exchanges if e.method == "GET"]
    assert polls == [503] * (FAST_RETRY.max_attempts + 1) + [200]


def test_waiting_gives_up_at_its_deadline(emulator):
    emulator.set_faults(import_delay_s=30)
    client = emulator.client()
    accepted = client.import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    with pytest.raises(MeisaiImportTimeout):
        client.wait_for_import("customers", accepted.import_id, first_interval=0.05, timeout=0.4)


# --- 接続テスト --------------------------------------------------------------------------------------------


def test_connection_test_reports_ok(emulator):
    check = emulator.client().test_connection()
    assert (check.ok, check.reason) == (True, "ok")


@pytest.mark.parametrize(
    ("faults", "token", "reason", "words"),
    [
        ({}, "wrong-token-000000000000", "auth", "APIトークン"),
        ({"maintenance": "json"}, None, "maintenance", "メンテナンス"),
        ({"maintenance": "html"}, None, "maintenance", "HTML"),
        ({"latency_ms": 2500}, None, "timeout", "応答"),
    ],
)
def test_connection_test_names_the_reason(emulator, faults, token, reason, words):
    if faults:
        emulator.set_faults(**faults)
    started = time.monotonic()
    check = emulator.client(token=token).test_connection(timeout=1.0)
    assert (check.ok, check.reason) == (False, reason)
    assert words in check.message
    assert time.monotonic() - started < 3


def test_connection_test_recognises_a_url_that_is_not_a_meisai_tenant(emulator):
    client = MeisaiClient(f"{emulator.root_url}nosuchaccount/", emulator.token, allow_insecure_loopback=True)
    check = client.test_connection()
    assert (check.ok, check.reason, check.http_status) == (False, "not_meisai", 404)
    assert "URL" in check.message


def test_connection_test_reports_an_unreachable_host():
    client = MeisaiClient(
        f"http://127.0.0.1:{free_port()}/demo/", "token-0123456789abcdef", allow_insecure_loopback=True
    )
    check = client.test_connection()
    assert (check.ok, check.reason) == (False, "unreachable")
    assert "接続できません" in check.message


# --- logging and secrets ----------------------------------------------------------------------------------


def test_each_exchange_is_logged_as_support_needs_it_with_the_token_masked(emulator, caplog):
    caplog.set_level("DEBUG")
    client = emulator.client()
    csv_bytes = customer_csv(customer_rows(2))
    client.import_customers(csv_bytes, "顧客.csv", CustomerImportParams(memo="ログ"))

    entry = emulator.exchanges[0]
    assert entry.method == "POST"
    assert entry.url == f"{emulator.base_url}api/v1/customers/imports"
    assert entry.request_headers[contract.TOKEN_HEADER] == "********cdef"
    assert entry.request_headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert entry.request_params["importProcessName"] == "ログ"
    assert [(f.part, f.filename, f.size) for f in entry.files] == [("files[0]", "顧客.csv", len(csv_bytes))]
    assert entry.sent_at.tzinfo is not None and abs(datetime.now(UTC) - entry.sent_at) < timedelta(seconds=30)
    assert entry.http_status == 200
    assert '"importId"' in entry.response_text and entry.elapsed_ms > 0
    everything = repr(emulator.exchanges) + caplog.text + repr(client)
    assert emulator.token not in everything


def test_errors_never_carry_the_token(emulator):
    emulator.set_faults(maintenance="json")
    with pytest.raises(MeisaiMaintenance) as caught:
        emulator.client().search_customers("x")
    error = caught.value
    assert emulator.token not in f"{error} {error!r} {error.user_message} {error.__dict__}"


def test_a_failing_log_hook_does_not_fail_the_call(emulator):
    def broken(_entry):
        raise RuntimeError("log store down")

    client = emulator.client(log_exchange=broken)
    assert client.test_connection().ok


def test_csv_values_outside_windows_31j_are_named_not_replaced():
    from webapp.meisai import MeisaiCsvEncodingError

    with pytest.raises(MeisaiCsvEncodingError) as caught:
        build_csv(["顧客コード", "顧客名"], [["C1", "正常"], ["C2", "𠮷野家"]])
    assert (caught.value.row, caught.value.column, caught.value.char) == (3, "顧客名", "𠮷")
    assert "3行目" in caught.value.user_message


def test_csv_is_quoted_crlf_windows_31j():
    data = build_csv(["顧客コード", "顧客名"], [["C1", 'a "quoted" 〜 name']])
    assert data == '"顧客コード","顧客名"\r\n"C1","a ""quoted"" ～ name"\r\n'.encode("cp932")


def _csv_of_exact_size(rows: int, size: int) -> bytes:
    """A valid customer CSV with ``rows`` data rows padded (in 住所2) to exactly ``size`` bytes."""
    data = customer_rows(rows)
    base = len(customer_csv(data))
    missing = size - base
    per_row, rest = divmod(missing, rows)
    for index, row in enumerate(data):
        row[4] += "x" * (per_row + (1 if index < rest else 0))
    csv_bytes = customer_csv(data)
    assert len(csv_bytes) == size
    return csv_bytes


def test_a_gateway_timeout_on_a_post_is_flagged_unknown_and_not_retried(emulator):
    emulator.set_faults(failure_rate=1.0, failure_status=504)
    with pytest.raises(MeisaiServerError) as caught:
        emulator.client().import_customers(customer_csv(customer_rows(1)), "顧客.csv")
    assert caught.value.http_status == 504
    assert caught.value.outcome_unknown is True
    assert len(emulator.exchanges) == 1


def test_a_gateway_timeout_on_a_read_is_retried(emulator):
    emulator.set_faults(failure_rate=1.0, failure_status=504)
    with pytest.raises(MeisaiServerError) as caught:
        emulator.client().search_customers("x")
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert caught.value.outcome_unknown is False


# --- base URL and token masking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("https://acme.eco-serv.jp/acme/backadmin/", "https://acme.eco-serv.jp/acme/"),
        ("https://acme.eco-serv.jp/acme/backadmin/index.php?x=1#top", "https://acme.eco-serv.jp/acme/"),
        ("  https://ACME.eco-serv.jp/acme  ", "https://acme.eco-serv.jp/acme/"),
        ("acme.eco-serv.jp/acme/", "https://acme.eco-serv.jp/acme/"),
        ("https://acme.eco-serv.jp/acme/api/v1/customers/", "https://acme.eco-serv.jp/acme/"),
        ("https://acme.eco-serv.jp:8443/acme/", "https://acme.eco-serv.jp:8443/acme/"),
    ],
)
def test_base_url_is_normalised(pasted, expected):
    assert normalize_base_url(pasted) == expected


@pytest.mark.parametrize(
    ("pasted", "loopback_ok", "words"),
    [
        ("", False, "URLを入力"),
        ("http://acme.eco-serv.jp/acme/", False, "https://"),
        ("http://127.0.0.1:5055/demo/", False, "https://"),
        ("http://192.168.1.5:5055/demo/", True, "https://"),
        ("https://acme.eco-serv.jp/backadmin/", False, "アカウント"),
        ("https://user:pass@acme.eco-serv.jp/acme/", False, "パスワード"),
        ("ftp://acme.eco-serv.jp/acme/", False, "https://"),
        ("https://acme.eco-serv.jp:99999/acme/", False, "形式"),
    ],
)
def test_unusable_base_urls_are_refused_in_japanese(pasted, loopback_ok, words):
    with pytest.raises(MeisaiUrlError) as caught:
        normalize_base_url(pasted, allow_insecure_loopback=loopback_ok)
    assert words in caught.value.user_message


def test_plain_http_is_allowed_for_loopback_in_development():
    assert normalize_base_url("http://127.0.0.1:5055/demo/backadmin/", True) == "http://127.0.0.1:5055/demo/"
    assert normalize_base_url("http://localhost:5055/demo", True) == "http://localhost:5055/demo/"
    assert normalize_base_url("http://[::1]:5055/demo/", True) == "http://[::1]:5055/demo/"


def test_token_masking_shows_at_most_the_last_four_characters():
    assert mask_token("abcdefghijklmnopqrstuvwxyz") == "********wxyz"
    assert mask_token("short-token") == "********"
    assert mask_token("") == ""


def test_a_token_a_header_cannot_carry_is_refused_without_echoing_it():
    with pytest.raises(MeisaiConfigError) as caught:
        MeisaiClient("https://acme.eco-serv.jp/acme/", "secret token\n")
    assert "secret" not in str(caught.value) + caught.value.user_message
