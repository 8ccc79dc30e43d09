"""Benchmark of an integration run (実行) end to end against the 楽楽明細 emulator (issue 6).

    .venv/bin/python bench/bench_runs.py                       # both cases, SQLite in a temp dir
    .venv/bin/python bench/bench_runs.py --only small          # 10,000 customers only
    .venv/bin/python bench/bench_runs.py --database-url postgresql://postgres@127.0.0.1:5432/bench_runs

Case 1 (顧客データ): 10,000 customer records, menu filtered on 連携ステータス=未連携, setting with レコード更新
(連携ステータス=連携済, 連携日時=実行日時). start_run() (record freeze) and engine.execute_run() run in this process;
target: run created -> complete with レコード更新 done < 5 s. Time is attributed to phases by wrapping engine and
client functions in this process (nothing in webapp/ is modified): CSV building (engine._plan, split into reading
records, encoding lines and RunRecord bookkeeping), HTTP (the POST of each call), polling (waiting for the import
state) and レコード更新 (engine.apply_record_updates).

Case 2 (帳票データ(CSV)): 1,000 customers are sent first (a customer run), then 100,000 invoices with 3 明細 lines
each (300,000 CSV lines) are sent; the run splits automatically into calls of <= 10,000 lines / 3 MB. The execute
step runs in a child process (a fresh interpreter, like an RQ work-horse) whose peak RSS (VmHWM) is measured.
Targets: all calls complete, < 60 s, worker peak memory < 400 MB.

The emulator runs as its own process (`python -m meisai_emulator`, import delay 0), so it does not share the GIL
with the run; its own ingest time (accepted -> processed, from its admin API) is reported separately: it is the
peer, not our code. start_run() is called with enqueue=False: this script executes the run itself, exactly as
the RQ job would (webapp.runs.tasks.execute_run calls engine.execute_run), so nothing is left in Redis (the app is
configured with Redis DB 14 all the same). Exits 0 once the figures are printed; the verdicts are in the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import random
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOKEN = "bench-runs-token-0123456789abcdef"
ACCOUNT = "demo"
SECRET_KEY = "bench-runs-secret-key-not-used-elsewhere"  # the child process must decrypt the stored API token
REDIS_URL = "redis://127.0.0.1:6379/14"
TARGET_SMALL_S = 5.0
TARGET_LARGE_S = 60.0
TARGET_LARGE_MB = 400.0
CUSTOMER_COLUMNS = ["顧客コード", "顧客名", "郵便番号", "住所1", "住所2", "会社名", "部署名", "担当者名", "メールアドレス"]
REPORT_HEADER_FIELDS = [("顧客コード", "text"), ("請求番号", "text"), ("請求日", "date"), ("請求金額", "number"),
                        ("取引先", "text"), ("件名", "text")]
REPORT_DETAIL_FIELDS = [("品名", "text"), ("数量", "number"), ("単価", "number"), ("金額", "number")]
LOAD_AT_START = os.getloadavg()
REPORT_COLUMNS = ["顧客コード", "請求番号", "請求日", "請求金額", "取引先", "件名", "品名", "数量", "単価", "金額"]


# ---- app and databases ---------------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_app(database_url: str, tmp: Path, poll_first: float = 0.05, poll_max: float = 0.5):
    from webapp import create_app

    app = create_app(
        {
            "APP_ENV": "test",  # allows http:// on loopback (the emulator)
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url),
            "FILES_DIR": str(tmp / "files"),
            "REDIS_URL": REDIS_URL,
            "RQ_QUEUE": "bench-runs",  # unused: runs are executed by this script, not queued
            "MAIL_SERVER": "",
            "RUN_POLL_FIRST_INTERVAL": poll_first,
            "RUN_POLL_MAX_INTERVAL": poll_max,
            "RUN_POLL_TIMEOUT": 600,
            "RUN_RETRY_BASE_DELAY": 0.2,
            "RUN_RETRY_TOTAL_SECONDS": 30,
        },
        instance_path=str(tmp / "instance"),
    )
    import logging

    logging.getLogger("webapp").setLevel(logging.WARNING)
    return app


def pg_admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name or ""):
        raise SystemExit(f"--database-url must name the database to create (letters, digits, _): {url}")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def pg_create(url: str) -> None:
    import psycopg

    admin, name = pg_admin_url(url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            # Never drop a database this script did not create.
            raise SystemExit(f"database {name} already exists; choose another name (this script drops it at the end)")
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(url: str) -> None:
    import psycopg

    admin, name = pg_admin_url(url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- the emulator, in its own process --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "meisai_emulator", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), "--import-delay", "0"],
        cwd=REPO, env={**os.environ, "MEISAI_DEMO_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the emulator exited with {process.returncode}; see {log_path}")
        try:
            if requests.get(root + "_health", timeout=1).ok:
                return process, root
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the emulator did not start")


def stop_emulator(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def emulator_ingest(root: str, import_ids: list[int]) -> tuple[float, int]:
    """Sum of accepted -> processed over the given imports (the emulator's clock), and how many were found."""
    imports = requests.get(f"{root}_admin/tenants/{ACCOUNT}/imports", timeout=60).json()
    wanted = set(import_ids)
    total, found = 0.0, 0
    for item in imports:
        if item["importId"] in wanted and item["processedAt"]:
            received = dt.datetime.fromisoformat(item["receivedAt"].rstrip("Z"))
            processed = dt.datetime.fromisoformat(item["processedAt"].rstrip("Z"))
            total += (processed - received).total_seconds()
            found += 1
    return total, found


# ---- phase timers (wrapping, not editing, webapp functions) ----------------------------------------------


class PhaseTimer:
    """Wall time spent inside wrapped functions, by label; generators are timed per item they produce."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._restore: list[tuple[object, str, object]] = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def wrap_generator(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            inner = original(*args, **kwargs)
            self.calls[label] += 1
            while True:
                started = time.perf_counter()
                try:
                    item = next(inner)
                except StopIteration:
                    self.seconds[label] += time.perf_counter() - started
                    return
                self.seconds[label] += time.perf_counter() - started
                yield item

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()


def instrument() -> PhaseTimer:
    from webapp.meisai.client import MeisaiClient
    from webapp.runs import engine, export

    timer = PhaseTimer()
    timer.wrap(engine, "_plan", "plan")
    timer.wrap_generator(export, "stream_records", "plan.read_records")
    timer.wrap(export, "record_lines", "plan.encode_lines")
    timer.wrap(engine, "_set_records", "plan.run_records")
    timer.wrap(engine, "_post", "post")
    timer.wrap(MeisaiClient, "import_customers", "post.http")
    timer.wrap(MeisaiClient, "import_reports", "post.http")
    timer.wrap(engine, "_poll", "poll")
    timer.wrap(MeisaiClient, "get_import_state", "poll.http")
    timer.wrap(engine, "apply_record_updates", "record_updates")
    return timer


def vm_kib(field: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def execute_instrumented(run_id: int) -> dict:
    """engine.execute_run(run_id) with phase timers; inside an app context."""
    from webapp.extensions import db
    from webapp.runs.engine import execute_run
    from webapp.runs.models import Run, RunCall

    timer = instrument()
    started = time.perf_counter()
    try:
        status = execute_run(run_id)
    finally:
        timer.restore()
    elapsed = time.perf_counter() - started
    db.session.expire_all()
    run = db.session.get(Run, run_id)
    calls = db.session.query(RunCall).filter_by(run_id=run_id).order_by(RunCall.index).all()
    return {
        "status": str(status),
        "seconds": elapsed,
        "phases": dict(timer.seconds),
        "phase_calls": dict(timer.calls),
        "ok_count": run.ok_count,
        "error_count": run.error_count,
        "record_count": run.record_count,
        "row_count": run.row_count,
        "records_updated": run.records_updated,
        "calls": [{"index": c.index, "status": str(c.status), "records": c.record_count, "rows": c.row_count,
                   "bytes": sum(f["size"] for f in c.files), "import_id": c.import_id,
                   "polls": len(c.state_history), "error": c.error_message} for c in calls],
        "error_message": run.error_message,
    }


# ---- data -------------------------------------------------------------------------------------------------


def customer_values(count: int, prefix: str, rng: random.Random) -> list[dict[str, str]]:
    from webapp.demo import COMPANY_KINDS, COMPANY_STEMS, DEPARTMENTS, GIVEN, PREFS, SURNAMES

    rows = []
    for n in range(1, count + 1):
        pref, town = rng.choice(PREFS)
        company = f"株式会社{rng.choice(COMPANY_STEMS)}{rng.choice(COMPANY_KINDS)}"
        rows.append({
            "顧客コード": f"{prefix}{n:06d}",
            "顧客名": company,
            "郵便番号": f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}",
            "住所1": f"{pref}{town}{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}",
            "住所2": rng.choice(["", f"{rng.choice(COMPANY_STEMS)}ビル{rng.randint(2, 20)}F"]),
            "会社名": company,
            "部署名": rng.choice(DEPARTMENTS),
            "担当者名": f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
            "メールアドレス": f"billing-{prefix.lower()}{n:06d}@example.co.jp",
            "連携ステータス": "未連携",
        })
    return rows


def setup_customers(name: str, count: int, prefix: str, base_url: str, rng: random.Random) -> dict:
    """A 顧客 DB (import format 1 + 連携ステータス/連携日時), its 未連携 menu and a customer setting with レコード更新."""
    from webapp.databases.operations import (
        FieldSpec,
        FilterSpec,
        MenuSpec,
        add_field,
        bulk_insert_records,
        create_database,
        create_menu,
    )
    from webapp.extensions import db
    from webapp.integrations.models import RUN_TIME, DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations

    database = create_database(name)
    fields = {n: add_field(database, FieldSpec(n, "text", required=n in ("顧客コード", "顧客名"))) for n in CUSTOMER_COLUMNS}
    fields["連携ステータス"] = add_field(database, FieldSpec("連携ステータス", "select", options=["未連携", "連携済"]))
    fields["連携日時"] = add_field(database, FieldSpec("連携日時", "datetime"))
    menu = create_menu(database, MenuSpec(
        name=f"{name} 未連携", column_field_ids=[fields[n].id for n in CUSTOMER_COLUMNS],
        filters=[FilterSpec(field_id=fields["連携ステータス"].id, operator="eq", value="未連携")],
        sort_field_id=fields["顧客コード"].id,
    ))
    setting = save_setting(database, SettingValues(
        name=f"{name}を楽楽明細へ", base_url=base_url, token=TOKEN, data_kind=DataKind.CUSTOMER, import_setting_id=1,
        record_updates=[(fields["連携ステータス"].id, "連携済"), (fields["連携日時"].id, RUN_TIME)],
    ))
    set_menu_integrations(menu, [setting.id])
    started = time.perf_counter()
    values = customer_values(count, prefix, rng)
    bulk_insert_records(database, [({fields[k].key: v for k, v in row.items()}, []) for row in values])
    db.session.commit()
    return {"database_id": database.id, "menu_id": menu.id, "setting_id": setting.id,
            "status_key": fields["連携ステータス"].key, "time_key": fields["連携日時"].key,
            "codes": [row["顧客コード"] for row in values], "seed_s": time.perf_counter() - started}


def setup_invoices(count: int, lines: int, codes: list[str], base_url: str, rng: random.Random,
                   record_updates: bool) -> dict:
    """A 帳票 DB (header + 明細 fields), a menu in report type 1's column order, a 帳票データ(CSV) setting."""
    from webapp.databases.operations import (
        FieldSpec,
        FilterSpec,
        MenuSpec,
        add_field,
        bulk_insert_records,
        create_database,
        create_menu,
    )
    from webapp.demo import ITEMS, SUBJECTS
    from webapp.extensions import db
    from webapp.integrations.models import RUN_TIME, DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations

    database = create_database("請求書(bench)")
    f = {n: add_field(database, FieldSpec(n, kind, required=n in ("顧客コード", "請求番号")))
         for n, kind in REPORT_HEADER_FIELDS}
    f["連携ステータス"] = add_field(database, FieldSpec("連携ステータス", "select", options=["未連携", "連携済"]))
    f["連携日時"] = add_field(database, FieldSpec("連携日時", "datetime"))
    for n, kind in REPORT_DETAIL_FIELDS:
        f[n] = add_field(database, FieldSpec(n, kind, placement="detail"))
    menu = create_menu(database, MenuSpec(
        name="請求書 送信待ち", column_field_ids=[f[n].id for n in REPORT_COLUMNS],
        filters=[FilterSpec(field_id=f["連携ステータス"].id, operator="eq", value="未連携")],
        sort_field_id=f["請求番号"].id,
    ))
    setting = save_setting(database, SettingValues(
        name="請求書を楽楽明細へ(CSV)", base_url=base_url, token=TOKEN, data_kind=DataKind.REPORT_CSV,
        report_type_id=1, import_method="new", skip_approval=True, issue_method="immediate",
        record_updates=[(f["連携ステータス"].id, "連携済"), (f["連携日時"].id, RUN_TIME)] if record_updates else [],
    ))
    set_menu_integrations(menu, [setting.id])
    db.session.commit()
    started = time.perf_counter()
    first = dt.date(2026, 4, 30)
    for begin in range(1, count + 1, 10_000):  # 10,000 records per bulk insert: the bench stays small too
        rows = []
        for number in range(begin, min(begin + 10_000, count + 1)):
            issued = first + dt.timedelta(days=30 * rng.randint(0, 7))
            details, total = [], 0
            for _ in range(lines):
                item, price, rate = rng.choice(ITEMS)
                quantity = rng.randint(1, 12)
                total += price * quantity
                details.append({f["品名"].key: item, f["数量"].key: quantity, f["単価"].key: price,
                                f["金額"].key: price * quantity})
            rows.append(({
                f["顧客コード"].key: rng.choice(codes),
                f["請求番号"].key: f"INV-{number:07d}",
                f["請求日"].key: issued.isoformat(),
                f["請求金額"].key: total,
                f["取引先"].key: "株式会社サンプル商事",
                f["件名"].key: rng.choice(SUBJECTS).format(month=issued.month),
                f["連携ステータス"].key: "未連携",
            }, details))
        bulk_insert_records(database, rows)
        db.session.commit()
    return {"database_id": database.id, "menu_id": menu.id, "setting_id": setting.id,
            "status_key": f["連携ステータス"].key, "seed_s": time.perf_counter() - started}


def start(info: dict):
    """start_run() as the 実行 dialog calls it (menu checks, record freeze), timed; not queued: we execute it."""
    from webapp.databases.models import Menu
    from webapp.extensions import db
    from webapp.integrations.models import IntegrationSetting
    from webapp.runs.operations import start_run

    setting = db.session.get(IntegrationSetting, info["setting_id"])
    menu = db.session.get(Menu, info["menu_id"])
    started = time.perf_counter()
    run = start_run(setting, menu, executor_id=None, memo="bench", trigger="cli", enqueue=False)
    return run.id, time.perf_counter() - started


def count_status(database_id: int, key: str, value: str) -> int:
    from sqlalchemy import select

    from webapp.databases.models import Record
    from webapp.extensions import db

    return sum(1 for data in db.session.execute(
        select(Record.data).where(Record.database_id == database_id)).scalars() if data.get(key) == value)


# ---- the child process of case 2 -------------------------------------------------------------------------


def child_main(args) -> int:
    """Run one execute step in this fresh interpreter and write the figures (incl. peak RSS) as JSON."""
    baseline_before_import = vm_kib("VmRSS")
    tmp = Path(args.instance)
    app = make_app(args.child_db, tmp, args.poll_first, args.poll_max)
    with app.app_context():
        from webapp.extensions import db

        db.session.execute(db.text("SELECT 1"))
        baseline = vm_kib("VmRSS")
        result = execute_instrumented(args.child_execute)
        db.session.remove()
    result["rss_start_kib"] = baseline_before_import
    result["rss_ready_kib"] = baseline
    result["hwm_kib"] = vm_kib("VmHWM")
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(args.child_result).write_text(json.dumps(result))
    return 0


def execute_in_child(run_id: int, database_url: str, tmp: Path, poll: tuple[float, float]) -> dict:
    out = tmp / f"child-{run_id}.json"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--_child-execute", str(run_id), "--_child-db", database_url,
         "--_instance", str(tmp), "--_child-result", str(out),
         "--poll-first", str(poll[0]), "--poll-max", str(poll[1])],
        cwd=REPO,
    )
    peak_kib = 0
    while process.poll() is None:  # sample too, as a cross-check of VmHWM
        try:
            peak_kib = max(peak_kib, vm_kib("VmRSS", str(process.pid)))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the execute child failed with {process.returncode}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = wall
    result["sampled_peak_kib"] = peak_kib
    result["children_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result


# ---- the two cases --------------------------------------------------------------------------------------


def case_small(app, root: str, records: int, rng: random.Random) -> dict:
    from webapp.extensions import db

    with app.app_context():
        info = setup_customers("顧客(bench)", records, "C", f"{root}{ACCOUNT}/", rng)
        run_id, start_s = start(info)
        result = execute_instrumented(run_id)
        result["start_s"] = start_s
        result["seed_s"] = info["seed_s"]
        result["updated_records"] = count_status(info["database_id"], info["status_key"], "連携済")
        db.session.remove()
    result["ingest_s"], result["ingest_found"] = emulator_ingest(root, [c["import_id"] for c in result["calls"]
                                                                        if c["import_id"]])
    return result


def case_large(app, root: str, database_url: str, tmp: Path, invoices: int, lines: int, customers: int,
               rng: random.Random, record_updates: bool) -> dict:
    from webapp.extensions import db

    with app.app_context():
        prep = setup_customers("取引先(bench)", customers, "K", f"{root}{ACCOUNT}/", rng)
        prep_run, prep_start_s = start(prep)
        prep_result = execute_instrumented(prep_run)
        prep_result["start_s"] = prep_start_s
        if prep_result["status"] != "completed":
            raise SystemExit(f"sending the {customers} customers ended {prep_result['status']}: "
                             f"{prep_result['error_message']}")
        info = setup_invoices(invoices, lines, prep["codes"], f"{root}{ACCOUNT}/", rng, record_updates)
        run_id, start_s = start(info)
        db.session.remove()
    result = execute_in_child(run_id, database_url, tmp, (app.config["RUN_POLL_FIRST_INTERVAL"],
                                                          app.config["RUN_POLL_MAX_INTERVAL"]))
    result["start_s"] = start_s
    result["seed_s"] = info["seed_s"]
    result["prep"] = prep_result
    with app.app_context():
        if record_updates:
            result["updated_records"] = count_status(info["database_id"], info["status_key"], "連携済")
        db.session.remove()
    result["ingest_s"], result["ingest_found"] = emulator_ingest(root, [c["import_id"] for c in result["calls"]
                                                                        if c["import_id"]])
    return result


# ---- report -----------------------------------------------------------------------------------------------


def pad(text: str, width: int) -> str:
    """Left-justify in terminal columns (a kanji takes two)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def machine_lines(dialect: str, server_version: str, poll: tuple[float, float]) -> list[str]:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    backend = f"SQLite {sqlite3.sqlite_version}" if dialect == "sqlite" else f"PostgreSQL {server_version}"
    return [
        f"date            {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"machine         nproc={os.cpu_count()}  {cpu}  {platform.system()} {platform.release()}",
        f"python          {platform.python_version()}",
        f"DB backend      {backend}",
        "emulator        python -m meisai_emulator, own process, import delay 0, SQLite",
        f"polling         RUN_POLL_FIRST_INTERVAL {poll[0]:g} s, RUN_POLL_MAX_INTERVAL {poll[1]:g} s (x1.5 per poll)",
        f"load average    {' / '.join(f'{x:.2f}' for x in LOAD_AT_START)} at start, "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end (1/5/15 min; > 0.5 means other work shared "
        "the 2 cores)",
    ]


def phase_lines(result: dict, *, child: bool) -> list[str]:
    p = defaultdict(float, result["phases"])
    total = result["seconds"]
    polls = sum(c["polls"] for c in result["calls"])
    calls = len(result["calls"])
    other = total - p["plan"] - p["post"] - p["poll"] - p["record_updates"]
    plan_rest = p["plan"] - p["plan.read_records"] - p["plan.encode_lines"] - p["plan.run_records"]

    def row(label: str, seconds: float, note: str = "", indent: int = 2) -> str:
        share = seconds / total * 100 if total else 0.0
        return f"{' ' * indent}{pad(label, 40 - indent)}{seconds:8.2f} s {share:5.1f} %  {note}".rstrip()

    ingest = result.get("ingest_s", 0.0)
    return [
        row("CSV building (engine._plan)", p["plan"], f"{result['row_count']:,} lines in {calls} file(s)"),
        row("reading records (stream_records)", p["plan.read_records"], "", 4),
        row("encoding lines (record_lines)", p["plan.encode_lines"], "cp932, quoted, CRLF", 4),
        row("RunRecord call_index updates", p["plan.run_records"], "", 4),
        row("packing, files, RunCall rows", plan_rest, "", 4),
        row("HTTP POST (engine._post)", p["post"], f"{calls} call(s)"),
        row("of which the client's POST", p["post.http"], "multipart upload + emulator's checks", 4),
        row("polling (engine._poll)", p["poll"], f"{polls} state poll(s)"),
        row("of which state GETs", p["poll.http"], "", 4),
        row("emulator ingest (peer)", ingest, "accepted -> processed, emulator clock", 4),
        row("レコード更新 (apply_record_updates)", p["record_updates"]),
        row("other (claim, counts, finish, mail)", other),
        row("execute_run total", total, "in the child process" if child else "in this process"),
    ]


def report(args, dialect: str, server_version: str, small: dict | None, large: dict | None) -> None:
    print("\n" + "=" * 92)
    print("Integration run benchmark (楽楽明細連携 実行, issue 6)")
    for line in machine_lines(dialect, server_version, (args.poll_first, args.poll_max)):
        print("  " + line)
    print("  timing          wall clock; phases by wrapping webapp.runs.engine._plan/_post/_poll/apply_record_updates,")
    print("                  export.stream_records/record_lines, engine._set_records and MeisaiClient methods in the")
    print("                  running process (no change to webapp/); shares are of execute_run's wall time")
    if small is not None:
        total = small["seconds"]
        print(f"\nCase 1: {args.records:,} customer records (顧客データ, import format 1), emulator delay 0")
        print(f"  seeding (bulk_insert_records)         {small['seed_s']:8.2f} s   (not part of the run)")
        print(f"  start_run (record freeze)             {small['start_s']:8.2f} s")
        for line in phase_lines(small, child=False):
            print(line)
        complete = (small["status"] == "completed" and small["ok_count"] == args.records
                    and small["records_updated"] and small["updated_records"] == args.records)
        print(f"  result: {small['status']}, ok {small['ok_count']:,}, errors {small['error_count']:,}, "
              f"{len(small['calls'])} call(s), {sum(c['bytes'] for c in small['calls']):,} bytes, "
              f"records updated to 連携済: {small['updated_records']:,}")
        print(f"  target: created -> complete with レコード更新 < {TARGET_SMALL_S:.0f} s: {total:.2f} s -> "
              f"{verdict(complete and total < TARGET_SMALL_S)}"
              f"   (incl. start_run {small['start_s'] + total:.2f} s)")
    if large is not None:
        total = large["seconds"]
        calls = large["calls"]
        prep = large["prep"]
        print(f"\nCase 2: {args.invoices:,} invoices x {args.lines} 明細 (帳票データ(CSV), report type 1), "
              f"customers among {args.customers:,}")
        print(f"  prep: {args.customers:,} customers sent by a customer run in "
              f"{prep['start_s'] + prep['seconds']:.2f} s ({prep['status']})")
        print(f"  seeding (bulk_insert_records)         {large['seed_s']:8.2f} s   (not part of the run)")
        print(f"  start_run (record freeze)             {large['start_s']:8.2f} s")
        for line in phase_lines(large, child=True):
            print(line)
        ok_calls = sum(1 for c in calls if c["status"] == "complete")
        sizes = [c["bytes"] for c in calls]
        rows = [c["rows"] for c in calls]
        print(f"  calls: {len(calls)} ({ok_calls} complete), rows/call {min(rows):,}-{max(rows):,}, "
              f"bytes/call {min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB, total {sum(sizes) / 1e6:.1f} MB")
        updated = f", records updated to 連携済: {large['updated_records']:,}" if "updated_records" in large else ""
        print(f"  result: {large['status']}, ok {large['ok_count']:,}, errors {large['error_count']:,}, "
              f"{large['row_count']:,} CSV lines{updated}")
        all_ok = (large["status"] == "completed" and ok_calls == len(calls) and large["ok_count"] == args.invoices
                  and len(calls) >= 30 * args.invoices * args.lines // 300_000)
        print(f"  target: automatic split, all calls complete: {len(calls)} calls -> {verdict(all_ok)}")
        print(f"  target: < {TARGET_LARGE_S:.0f} s: execute {total:.2f} s -> {verdict(total < TARGET_LARGE_S)}"
              f"   (incl. start_run {large['start_s'] + total:.2f} s; child process wall incl. interpreter start "
              f"{large['process_wall_s']:.2f} s)")
        hwm = large["hwm_kib"] / 1024
        print(f"  target: worker peak memory < {TARGET_LARGE_MB:.0f} MB: VmHWM {hwm:.0f} MB -> "
              f"{verdict(hwm < TARGET_LARGE_MB)}")
        print(f"          (RSS at interpreter start {large['rss_start_kib'] / 1024:.0f} MB, app ready "
              f"{large['rss_ready_kib'] / 1024:.0f} MB; sampled peak {large['sampled_peak_kib'] / 1024:.0f} MB; "
              f"ru_maxrss {large['maxrss_kib'] / 1024:.0f} MB;")
        print("          ru_maxrss/RUSAGE_CHILDREN also count the forked copy of this bench process before exec, "
              "so VmHWM is the figure)")


# ---- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["small", "large"], help="run only case 1 (small) or case 2 (large)")
    parser.add_argument("--records", type=int, default=10_000, help="customer records of case 1 (default 10000)")
    parser.add_argument("--invoices", type=int, default=100_000, help="invoices of case 2 (default 100000)")
    parser.add_argument("--lines", type=int, default=3, help="明細 lines per invoice (default 3)")
    parser.add_argument("--customers", type=int, default=1_000, help="customers sent before case 2 (default 1000)")
    parser.add_argument("--no-invoice-updates", action="store_true",
                        help="case 2 without レコード更新 (default: 連携ステータス/連携日時 updated, as in the demo)")
    parser.add_argument("--database-url", default="",
                        help="postgresql://user@host:port/NEW_DB_NAME (created, then dropped); "
                             "default: SQLite in a temp dir")
    parser.add_argument("--poll-first", type=float, default=0.05,
                        help="RUN_POLL_FIRST_INTERVAL in seconds (default 0.05; the product's default is 2)")
    parser.add_argument("--poll-max", type=float, default=0.5,
                        help="RUN_POLL_MAX_INTERVAL in seconds (default 0.5; the product's default is 15)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards (also after a failure)")
    parser.add_argument("--_child-execute", dest="child_execute", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_child-db", dest="child_db", help=argparse.SUPPRESS)
    parser.add_argument("--_child-result", dest="child_result", help=argparse.SUPPRESS)
    parser.add_argument("--_instance", dest="instance", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_execute:
        return child_main(args)

    postgres = args.database_url.startswith(("postgresql://", "postgres://"))
    if args.database_url and not postgres:
        print("--database-url must be a postgresql:// URL (SQLite is the default)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    if postgres:
        pg_create(database_url)
    emulator = None
    small = large = None
    rng = random.Random(args.seed)
    try:
        emulator, root = start_emulator(tmp / "emulator", tmp / "emulator.log")
        app = make_app(database_url, tmp, args.poll_first, args.poll_max)
        from webapp.extensions import db

        with app.app_context():
            db.create_all()
            dialect = db.engine.dialect.name
            server_version = ".".join(map(str, db.engine.dialect.server_version_info or ())) if postgres else ""
            db.session.remove()
        print(f"Emulator at {root}; DB {'PostgreSQL' if postgres else 'SQLite'} in {tmp}")
        if args.only in (None, "small"):
            print(f"Case 1: {args.records:,} customers …", flush=True)
            small = case_small(app, root, args.records, rng)
        if args.only in (None, "large"):
            print(f"Case 2: {args.customers:,} customers, then {args.invoices:,} invoices x {args.lines} lines …",
                  flush=True)
            large = case_large(app, root, database_url, tmp, args.invoices, args.lines, args.customers, rng,
                               not args.no_invoice_updates)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if emulator is not None:
            stop_emulator(emulator)
        if postgres:
            pg_drop(database_url)
        if args.keep:
            print(f"Kept: {tmp} (emulator.log, files/runs/*/ the CSV files sent)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, dialect, server_version, small, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
