"""The emulator on its own, with raw HTTP: the contract's shapes and the requests the product never sends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers import free_port, stop_process, wait_until
from meisai_testlib import customer_csv, customer_rows, report_csv, report_row, start_emulator

from webapp.meisai import contract

REPO = Path(__file__).resolve().parents[2]


def post(emulator, path: str, params=None, files=None, token=None, headers=None):
    parts = {}
    if params is not None:
        parts["json"] = (None, params if isinstance(params, str) else json.dumps(params), "application/json")
    for index, (name, data, ctype) in enumerate(files or []):
        parts[f"files[{index}]"] = (name, data, ctype)
    all_headers = {contract.TOKEN_HEADER: token or emulator.token, **(headers or {})}
    return requests.post(
        f"{emulator.base_url}api/v1/{path}", files=parts or None, headers=all_headers, timeout=10
    )


def csv_file(data: bytes):
    return ("顧客.csv", data, contract.CSV_CONTENT_TYPE)


def wait_done(emulator, kind: str, import_id: int) -> dict:
    def finished():
        body = requests.get(
            f"{emulator.base_url}api/v1/{kind}/imports/{import_id}/state",
            headers={contract.TOKEN_HEADER: emulator.token},
            timeout=5,
        ).json()
        return body if body["processStatus"] != "active" else None

    return wait_until(finished, timeout=10, message=f"import {import_id} stayed active")


def test_success_and_state_answers_have_the_documented_shape(emulator):
    response = post(
        emulator, "customers/imports", {"skipFirst": 1}, [csv_file(customer_csv(customer_rows(1)))]
    )
    body = response.json()

    assert response.status_code == 200
    assert list(body) == ["status", "code", "importId", "url", "version", "accessTime", "linkuri"]
    assert (body["status"], body["code"], body["version"]) == ("success", "200", "v1")
    assert body["url"] == f"{emulator.base_url}api/v1/customers/imports"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", body["accessTime"])
    state = wait_done(emulator, "customers", body["importId"])
    assert list(state) == [
        "status",
        "code",
        "processStatus",
        "importId",
        "total",
        "succeeded",
        "failed",
        "rowErrors",
    ]
    assert state["processStatus"] == "complete"


def test_errors_have_the_documented_shape(emulator):
    response = post(
        emulator, "customers/imports", {"isUpdateInfo": "x"}, [csv_file(customer_csv(customer_rows(1)))]
    )
    body = response.json()

    assert response.status_code == 400
    assert body["status"] == "error" and body["code"] == "400"
    (error,) = body["errors"]
    assert error["code"] == "E_PARAM" and error["msg"]
    assert error["description"] == [
        {"code": "E_PARAM_INVALID", "msg": "整数で指定してください。", "name": "isUpdateInfo", "value": "x"}
    ]


def test_the_sister_products_header_is_refused_with_a_hint(emulator):
    response = requests.get(
        f"{emulator.base_url}api/v1/customers/",
        headers={contract.WRONG_TOKEN_HEADER: emulator.token},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "E_AUTH"
    assert contract.TOKEN_HEADER in response.json()["errors"][0]["msg"]


def test_numeric_strings_are_accepted_and_a_missing_json_part_means_defaults(emulator):
    assert post(
        emulator, "customers/imports", {"isUpdateInfo": "1", "settingId": "1"}, [csv_file(b'"a"\r\n')]
    ).ok
    assert post(emulator, "customers/imports", None, [csv_file(b'"a"\r\n')]).ok
    effective = [i["effective"] for i in emulator.imports()]
    assert effective[0]["isUpdateInfo"] == 1
    assert effective[1] == {
        "isUpdateInfo": 0,
        "updateBlank": 2,
        "importProcessName": None,
        "skipFirst": 1,
        "settingId": 1,
    }


@pytest.mark.parametrize(
    ("params", "name", "code"),
    [
        ("{not json", "json", "E_PARAM_INVALID"),
        ({"isUpdateInfo": True}, "isUpdateInfo", "E_PARAM_INVALID"),
        ({"updateBlank": 3}, "updateBlank", "E_PARAM_INVALID"),
        ({"skipFirst": 2}, "skipFirst", "E_PARAM_INVALID"),
        ({"importProcessName": "x" * 256}, "importProcessName", "E_PARAM_INVALID"),
        ({"isSendFax": 1}, "isSendFax", "E_PARAM_UNKNOWN"),
    ],
)
def test_customer_parameters_are_validated(emulator, params, name, code):
    response = post(emulator, "customers/imports", params, [csv_file(b'"a"\r\n')])
    assert response.status_code == 400
    (description,) = response.json()["errors"][0]["description"]
    assert (description["name"], description["code"]) == (name, code)


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"isNewIssues": 3}, {"isNewIssues"}),
        ({"isNewIssues": 1, "isImmApproval": 1}, {"pdfIssueType"}),
        ({"isNewIssues": 1, "isImmApproval": 1, "pdfIssueType": 1}, {"publicationDate"}),
        (
            {"isNewIssues": 1, "isImmApproval": 1, "pdfIssueType": 1, "publicationDate": "2099/01/01 10:00"},
            {"publicationDate"},
        ),
        ({"isNewIssues": 1, "publicationDate": "2099-01-01 10:00:00"}, {"publicationDate"}),
        ({"isNewIssues": 1, "isPostReplaceBill": 0}, {"isPostReplaceBill"}),
        ({"isNewIssues": 2, "isSendMail": 2}, {"isSendMail"}),
    ],
)
def test_report_parameter_rules(emulator, params, names):
    response = post(emulator, "reports/imports", params, [csv_file(report_csv([report_row("C1", "N1")]))])
    assert response.status_code == 400
    assert {d["name"] for d in response.json()["errors"][0]["description"]} == names


def test_a_missing_file_part_is_e_file(emulator):
    response = post(emulator, "customers/imports", {"skipFirst": 1})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "E_FILE" and error["description"][0]["name"] == "files[0]"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("顧客コード\r\n".encode("utf-8-sig"), "BOM"),
        ("顧客コード\r\n".encode("utf-16"), "NUL"),
        (b"\x81\x20\r\n", "Windows-31J"),
        (b'"unterminated\r\n"x', "形式"),
    ],
)
def test_files_that_are_not_windows_31j_csv_are_e_file(emulator, data, why):
    response = post(emulator, "customers/imports", {}, [csv_file(data)])
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "E_FILE"
    assert why in error["msg"] + error["description"][0]["msg"]


def test_shift_jis_specific_characters_are_read_correctly(emulator):
    rows = customer_rows(1)
    rows[0][1] = "髙橋～①ｶﾀｶﾅ"  # IBM extension, fullwidth tilde, NEC special, half-width kana
    import_id = post(emulator, "customers/imports", {}, [csv_file(customer_csv(rows))]).json()["importId"]
    assert wait_done(emulator, "customers", import_id)["processStatus"] == "complete"
    found = requests.get(
        f"{emulator.base_url}api/v1/customers/",
        params={"keyword": "C00001"},
        headers={contract.TOKEN_HEADER: emulator.token},
        timeout=5,
    ).json()
    assert found["customers"][0]["customerName"] == "髙橋～①ｶﾀｶﾅ"


def test_a_row_with_the_wrong_number_of_columns_fails(emulator):
    data = customer_csv(customer_rows(1)) + '"C9","short"\r\n'.encode("cp932")
    import_id = post(emulator, "customers/imports", {}, [csv_file(data)]).json()["importId"]
    state = wait_done(emulator, "customers", import_id)
    assert state["rowErrors"] == [
        {"row": 3, "name": "", "msg": "列数（2）が取込設定の列数（9）と一致しません。"}
    ]


def test_a_csv_and_a_second_file_is_refused(emulator):
    response = post(
        emulator,
        "reports/imports",
        {"isNewIssues": 1},
        [csv_file(report_csv([report_row("C1", "N1")])), csv_file(b'"a"\r\n')],
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["description"][0]["name"] == "files[1]"


def test_an_unknown_account_answers_like_a_wrong_url_not_like_the_api(emulator):
    response = requests.get(f"{emulator.root_url}nosuch/api/v1/customers/", timeout=5)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_an_unknown_api_path_answers_in_json(emulator):
    response = requests.get(
        f"{emulator.base_url}api/v1/invoices", headers={contract.TOKEN_HEADER: emulator.token}, timeout=5
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "E_NOT_FOUND"


def test_rate_limit_answers_429_with_retry_after(emulator):
    emulator.set_faults(rate_limit=1, rate_window_s=30)
    url = f"{emulator.base_url}api/v1/customers/"
    headers = {contract.TOKEN_HEADER: emulator.token}
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    limited = requests.get(url, headers=headers, timeout=5)
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == "E_RATE"
    assert 1 <= int(limited.headers["Retry-After"]) <= 30


def test_maintenance_modes_answer_503_json_or_200_html(emulator):
    url = f"{emulator.base_url}api/v1/customers/"
    emulator.set_faults(maintenance="json")
    json_answer = requests.get(url, timeout=5)
    emulator.set_faults(maintenance="html")
    html_answer = requests.get(url, timeout=5)

    assert json_answer.status_code == 503 and json_answer.json()["errors"][0]["code"] == "E_MAINTENANCE"
    assert html_answer.status_code == 200 and "メンテナンス" in html_answer.text
    assert html_answer.headers["Content-Type"].startswith("text/html")


def test_fault_knobs_are_validated(emulator):
    for bad in ({"failure_rate": 2}, {"speed": 1}, {"next_fault": "418"}, {"next_on": "post"}, {"next_count": -1}):
        response = requests.post(f"{emulator.root_url}_admin/tenants/demo/faults", json=bad, timeout=5)
        assert response.status_code == 400, bad


def search(emulator) -> requests.Response:
    return requests.get(f"{emulator.base_url}api/v1/customers/", headers={contract.TOKEN_HEADER: emulator.token},
                        timeout=10)


def state_of(emulator, import_id: int) -> requests.Response:
    return requests.get(f"{emulator.base_url}api/v1/customers/imports/{import_id}/state",
                        headers={contract.TOKEN_HEADER: emulator.token}, timeout=10)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("maintenance", 503, "E_MAINTENANCE"), ("500", 500, "E_SERVER"), ("502", 502, "E_SERVER"),
     ("504", 504, "E_SERVER"), ("429", 429, "E_RATE")],
)
def test_the_next_requests_answer_the_counted_fault_then_it_is_spent(emulator, fault, status, code):
    emulator.set_faults(next_count=2, next_fault=fault)
    answers = [search(emulator) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["errors"][0]["code"] == code
    assert emulator.faults()["next_count"] == 0


def test_the_counted_html_maintenance_page_answers_200(emulator):
    emulator.set_faults(next_count=1, next_fault="maintenance_html")
    page, after = search(emulator), search(emulator)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "メンテナンス" in page.text
    assert after.json()["status"] == "success"


def test_a_counted_fault_on_state_calls_leaves_other_requests_alone(emulator):
    emulator.set_faults(next_count=2, next_on="state")
    accepted = post(emulator, "customers/imports", {"skipFirst": 1}, [csv_file(customer_csv(customer_rows(1)))])
    assert accepted.status_code == 200 and search(emulator).status_code == 200
    import_id = accepted.json()["importId"]
    assert [state_of(emulator, import_id).status_code for _ in range(3)] == [503, 503, 200]


def test_a_counted_fault_on_imports_spares_reads(emulator):
    emulator.set_faults(next_count=1, next_fault="502", next_on="import")
    assert search(emulator).status_code == 200
    refused = post(emulator, "customers/imports", {"skipFirst": 1}, [csv_file(customer_csv(customer_rows(1)))])
    accepted = post(emulator, "customers/imports", {"skipFirst": 1}, [csv_file(customer_csv(customer_rows(1)))])
    assert (refused.status_code, accepted.status_code) == (502, 200)
    assert [i["importId"] for i in emulator.imports()] == [accepted.json()["importId"]]


def test_a_counted_slow_answer_waits_then_answers_normally(emulator):
    emulator.set_faults(next_count=1, next_fault="slow", next_slow_ms=400)
    slow, fast = search(emulator), search(emulator)
    assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.4
    assert fast.status_code == 200 and fast.elapsed.total_seconds() < 0.4


def test_requests_in_flight_together_spend_the_count_exactly(emulator):
    from concurrent.futures import ThreadPoolExecutor

    emulator.set_faults(next_count=5, next_fault="500")
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: search(emulator), range(20)))
    assert statuses == [200] * 15 + [500] * 5


def test_the_admin_endpoint_requires_the_admin_token_when_one_is_set(tmp_path):
    app, root_url, stop = start_emulator(tmp_path / "emulator", admin_token="admin-secret")
    try:
        refused = requests.get(f"{root_url}_admin/tenants", timeout=5)
        allowed = requests.get(
            f"{root_url}_admin/tenants", headers={"X-Emulator-Admin-Token": "admin-secret"}, timeout=5
        )
    finally:
        stop()
    assert refused.status_code == 403
    assert allowed.status_code == 200


def test_imports_accepted_before_a_restart_are_finished_after_it(tmp_path):
    data_dir = tmp_path / "emulator"
    app, root_url, stop = start_emulator(data_dir, import_delay=0)
    from meisai_emulator.tenants import create_tenant

    create_tenant(app.extensions["meisai_emulator"].store, "demo", "restart-token-0123456789")
    app.extensions["meisai_emulator"].worker.stop()  # the worker dies before it gets to the import
    response = requests.post(
        f"{root_url}demo/api/v1/customers/imports",
        files={"files[0]": ("c.csv", customer_csv(customer_rows(2)), contract.CSV_CONTENT_TYPE)},
        headers={contract.TOKEN_HEADER: "restart-token-0123456789"},
        timeout=5,
    )
    import_id = response.json()["importId"]
    stop()

    _, root_url, stop = start_emulator(data_dir, import_delay=0)
    def finished():
        state = requests.get(
            f"{root_url}demo/api/v1/customers/imports/{import_id}/state",
            headers={contract.TOKEN_HEADER: "restart-token-0123456789"},
            timeout=5,
        ).json()
        return state if state["processStatus"] != "active" else None

    try:
        state = wait_until(finished, timeout=10, message="the import stayed active after the restart")
    finally:
        stop()
    assert (state["processStatus"], state["total"]) == ("complete", 2)


# --- command line -----------------------------------------------------------------------------------------


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "meisai_emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_the_readme_command_starts_a_demo_tenant_with_the_configured_token(tmp_path):
    port = free_port()
    env = {**os.environ, "MEISAI_DEMO_TOKEN": "demo-token-from-env-1234", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "meisai_emulator", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        banner = "".join(process.stdout.readline() for _ in range(5))
        answer = requests.get(
            f"http://127.0.0.1:{port}/demo/api/v1/customers/",
            headers={contract.TOKEN_HEADER: "demo-token-from-env-1234"},
            timeout=5,
        )
    finally:
        stop_process(process)
    assert f"http://127.0.0.1:{port}/demo/" in banner
    assert "demo-token-from-env-1234" in banner
    assert answer.status_code == 200
    assert process.returncode == 0  # SIGTERM ends it cleanly


def test_cli_creates_tenants_and_sets_fault_knobs(tmp_path):
    data_dir = str(tmp_path / "d")
    created = run_cli("create-tenant", "acme", "--data-dir", data_dir)
    listed = run_cli("list-tenants", "--data-dir", data_dir)
    faults = run_cli(
        "faults",
        "acme",
        "--maintenance",
        "html",
        "--latency-ms",
        "200",
        "--rate-limit",
        "20",
        "--next-count",
        "3",
        "--next-fault",
        "504",
        "--next-on",
        "import",
        "--data-dir",
        data_dir,
    )
    shown = run_cli("faults", "acme", "--data-dir", data_dir)
    duplicate = run_cli("create-tenant", "acme", "--data-dir", data_dir)

    assert created.returncode == 0
    token = re.search(r"API token: (\S+)", created.stdout).group(1)
    assert len(token) >= 32
    assert listed.stdout.startswith("acme\t/acme/")
    assert token not in listed.stdout
    assert "maintenance: html" in faults.stdout and "latency_ms: 200" in faults.stdout
    assert "rate_limit: 20" in shown.stdout
    assert "next_count: 3" in shown.stdout and "next_fault: 504" in shown.stdout and "next_on: import" in shown.stdout
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
