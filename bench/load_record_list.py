"""Load test: 20 users browse and search レコード一覧 of a 100,000-record DB while two integrations run (issue 9).

    .venv/bin/python bench/load_record_list.py                  # defaults below; about 4-6 minutes
    .venv/bin/python bench/load_record_list.py --users 20 --max-duration 240 --idle-requests 250

Production topology on PostgreSQL, every process started here in its own session and stopped at the end:
a fresh database (created, migrated with `flask db upgrade` + `flask ensure-indexes`, dropped afterwards),
the emulator as its own process (at nice 19: it stands in for 楽楽明細's servers, not hosted by a real
installation), gunicorn with deploy/gunicorn.conf.py (GUNICORN_WORKERS=2, 4 threads each), 2 × `worker.py` and
one `worker.py --scheduler` (at the product's default WORKER_NICE=10), on Redis DB 13 with a queue name of our
own. Only loopback.

Data: `flask seed-demo --customers 100000 --invoices 100000` (demo.seed_demo, i.e. bulk_insert_records, with the
demo's two integrations: 顧客データ「楽楽明細へ顧客を連携」 and 帳票データ(CSV)「楽楽明細へ請求書を発行(CSV)」,
both with レコード更新). The emulator's tenant is told the 100,000 customers first (direct API calls), so the
invoice run imports without "unknown customer" row errors while the customer run re-sends them as updates.

Phases:
  1. idle: 1 user, the same request mix, one request after another (0.1 s apart), no run active;
  2. load: --users users (each its own login session, think time uniform --think-min..--think-max seconds, the
     usual model of a person reading a page), ramped up over 5 s; they browse alone for --users-only seconds
     (reported apart), then an operator session starts both integrations through the app's POST route (the 実行
     button); the load goes on until both runs have ended (at least --min-duration, at most --max-duration
     seconds). Samples taken while a run was active count as "under load". CPU seconds per process (with its
     children) are read from /proc for both windows, to show where the 2 cores went.
Request mix (weights): 請求書一覧 (100,000 records, sorted by 請求日 desc) random page 1-20 (30), the
楽楽明細 送信待ち請求書 menu (filter 連携ステータス=未連携, rows change as the run updates them) page 1-10 (15),
keyword search on 請求書一覧 (25), htmx paging fragment (15), 顧客一覧 (100,000 customers) page 1-20 (15).
An error is a transport error, a non-200 answer or a page without the record count.
Latency is measured by this script over loopback (what a browser would wait for, minus rendering).

Targets: 0 errors; p95 under load < 3 × p95 idle (overall and per page kind). Exit 0 once the figures are
printed (MET / NOT MET are in the output); 2 when the set-up fails.
No new dependency: threads + requests (both already in the venv) instead of locust, so percentiles are exact and
no gevent monkey-patching meets the process supervision of this script.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"  # the demo seed's administrator
FINAL_STATUSES = {"completed", "partial", "error", "needs_check", "interrupted"}
STATUS_LABELS = {"queued": "待機中", "running": "実行中", "completed": "完了", "partial": "一部エラー", "error": "エラー",
                 "needs_check": "要確認", "interrupted": "中断", "finishing": "終了処理中(レコード更新・メール)"}
CUSTOMER_SETTING = "楽楽明細へ顧客を連携"
INVOICE_SETTING = "楽楽明細へ請求書を発行(CSV)"
CUSTOMER_MENU = "楽楽明細 未連携顧客"
INVOICE_MENU = "楽楽明細 送信待ち請求書"
KEYWORDS = ["富士", "佐藤", "みなと", "保守料金", "INV-2026", "C01234", "桜 ご請求", "ご利用料金", "東都"]
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
COUNT_MARK = 'id="record-count"'


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# ---- the topology (shared with bench/fault_drill.py) -------------------------------------------------------


class SetupError(Exception):
    pass


class Topology:
    """A fresh PostgreSQL database plus the product's processes, each in its own session (so a SIGKILL of its
    group also takes RQ's work-horse), with logs under a temp dir."""

    def __init__(self, tag: str, *, extra_env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        self.db_name = f"{tag}_{os.getpid()}"
        self.database_url = f"{PG_SERVER}/{self.db_name}"
        self.web_port = free_port()
        self.emulator_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.emulator_root = f"http://127.0.0.1:{self.emulator_port}/"
        self.emulator_dir = self.tmp / "emulator"
        self.token = secrets.token_urlsafe(24)
        self.queue = f"{tag}-{os.getpid()}"
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL, "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RQ_QUEUE": self.queue, "SECRET_KEY": secrets.token_hex(32), "FILES_DIR": str(self.tmp / "files"),
            # development: the demo settings may call the emulator over plain http on loopback (as `make prod`).
            "APP_ENV": "development", "APP_BASE_URL": self.base, "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "GUNICORN_WORKERS": "2", "MEISAI_DEMO_TOKEN": self.token, "MEISAI_EMULATOR_URL": f"{self.emulator_root}demo/",
            "MAIL_SERVER": "", "FLASK_APP": "webapp", "PYTHONUNBUFFERED": "1",
        })
        self.env.update(extra_env or {})
        self.processes: dict[str, subprocess.Popen] = {}
        self.database_created = False

    # database

    def _admin_connect(self):
        import psycopg

        return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)

    def create_database(self) -> None:
        with self._admin_connect() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db_name,)).fetchone():
                raise SetupError(f"database {self.db_name} exists already; not touching it")
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.database_created = True

    def drop_database(self) -> None:
        if not self.database_created:
            return
        for attempt in range(10):  # PostgreSQL may just be restarting (fault drill)
            try:
                with self._admin_connect() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self.database_created = False
                return
            except Exception as exc:  # noqa: BLE001  (reported, retried a bounded number of times)
                if attempt == 9:
                    say(f"could not drop database {self.db_name}: {type(exc).__name__}: {exc}")
                time.sleep(2)

    def connect(self):
        import psycopg

        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def execute(self, sql: str, params=()) -> None:
        with self.connect() as conn:
            conn.execute(sql, params)

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    # processes

    def run_step(self, name: str, argv: list[str], timeout: float = 600) -> float:
        started = time.perf_counter()
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            result = subprocess.run(argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=timeout, check=False)
        if result.returncode != 0:
            raise SetupError(f"{' '.join(argv[2:])} failed ({result.returncode}):\n{log.read_text()[-3000:]}")
        return time.perf_counter() - started

    def prepare(self, customers: int, invoices: int) -> float:
        """Migrations, indexes and the demo seed; returns the seed's seconds."""
        flask = [sys.executable, "-m", "flask", "--app", "webapp"]
        self.run_step("upgrade", [*flask, "db", "upgrade"])
        self.run_step("indexes", [*flask, "ensure-indexes"])
        return self.run_step("seed", [*flask, "seed-demo", "--customers", str(customers), "--invoices", str(invoices)])

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()  # the child holds its own descriptor
        self.processes[name] = process
        return process

    def start_emulator(self) -> None:
        self.emulator_dir.mkdir(parents=True, exist_ok=True)
        # The emulator stands in for 楽楽明細's own servers, which a real installation does not host: at the
        # lowest CPU priority it takes only what the product leaves.
        self.start("emulator", ["nice", "-n", "19", sys.executable, "-m", "meisai_emulator", "--host", "127.0.0.1",
                                "--port", str(self.emulator_port), "--data-dir", str(self.emulator_dir)])
        self.wait_http("emulator", f"{self.emulator_root}_health")

    def start_web(self) -> None:
        self.start("web", [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
                           "webapp:create_app()"])
        self.wait_http("web", f"{self.base}/login")

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "worker.py"])

    def start_scheduler(self) -> None:
        self.start("scheduler", [sys.executable, "worker.py", "--scheduler"])

    def wait_http(self, name: str, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise SetupError(f"[{name}] exited ({self.processes[name].returncode}):\n{self.log_tail(name)}")
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.3)
        raise SetupError(f"[{name}] did not answer on {url} within {timeout:.0f} s")

    def wait_healthy(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"{self.base}/healthz", timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        return body

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def kill_tree(self, name: str) -> list[int]:
        """SIGKILL a process and all its descendants at once, as if its machine died: no clean-up at all.
        Its process group is not enough: RQ's work-horse calls setpgrp() and would survive."""
        process = self.processes[name]
        pids = descendants(process.pid) + [process.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)
        return pids

    def stop_all(self) -> None:
        strays = [pid for process in self.processes.values() for pid in descendants(process.pid)]
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        for pid in strays:  # e.g. a work-horse in its own process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.processes.clear()

    def cleanup(self, keep: bool = False) -> None:
        self.stop_all()
        self.drop_database()
        self.clean_redis()
        if keep:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def clean_redis(self) -> None:
        """Drop this run's RQ keys from DB 13 (only keys naming our queue or its jobs)."""
        try:
            from redis import Redis

            redis = Redis.from_url(REDIS_URL)
            for key in list(redis.scan_iter(match=f"*{self.queue}*", count=500))[:10_000]:
                redis.delete(key)
        except Exception as exc:  # noqa: BLE001  (clean-up is best effort)
            say(f"Redis clean-up skipped: {type(exc).__name__}")

    # app objects

    def ids(self) -> dict:
        menus = dict(self.query("SELECT name, id FROM menus"))
        settings = dict(self.query("SELECT name, id FROM integration_settings"))
        databases = dict(self.query("SELECT name, id FROM databases"))
        return {"menus": menus, "settings": settings, "databases": databases}

    def run_rows(self, run_ids: list[int]) -> dict[int, dict]:
        rows = self.query(
            "SELECT id, status, record_count, ok_count, error_count, call_count, created_at, started_at, finished_at, "
            "error_message FROM runs WHERE id = ANY(%s)", (run_ids,))
        keys = ["id", "status", "record_count", "ok_count", "error_count", "call_count", "created_at", "started_at",
                "finished_at", "error_message"]
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def call_rows(self, run_id: int) -> list[dict]:
        rows = self.query('SELECT "index", status, import_id, record_count, files, error_message FROM run_calls '
                          'WHERE run_id = %s ORDER BY "index"', (run_id,))
        return [dict(zip(["index", "status", "import_id", "record_count", "files", "error_message"], r, strict=True))
                for r in rows]

    # the emulator

    def emulator_imports(self) -> list[dict]:
        return requests.get(f"{self.emulator_root}_admin/tenants/demo/imports", timeout=60).json()

    def import_total(self, import_id: int) -> int:
        response = requests.get(f"{self.emulator_root}demo/api/v1/customers/imports/{import_id}/state",
                                headers={"X-WB-apitoken": self.token}, timeout=30)
        return int(response.json().get("total", -1))

    def register_customers(self, codes: list[str]) -> None:
        """Tell the emulator's tenant these customers (direct API calls, 10,000 rows each)."""
        from webapp.meisai.client import CustomerImportParams, ImportKind, MeisaiClient

        header = "顧客コード,顧客名,郵便番号,住所1,住所2,会社名,部署名,担当者名,メールアドレス\r\n"
        params = CustomerImportParams(setting_id=1).to_api()
        with MeisaiClient(f"{self.emulator_root}demo/", self.token, allow_insecure_loopback=True) as client:
            for start in range(0, len(codes), 10_000):
                body = header + "".join(f"{code},登録済顧客{code},,,,,,,\r\n" for code in codes[start:start + 10_000])
                accepted = client.import_customers(body.encode("cp932"), f"pre{start // 10_000:02d}.csv", params)
                state = client.wait_for_import(ImportKind.CUSTOMERS, accepted.import_id, timeout=120,
                                               first_interval=0.2, max_interval=1.0)
                if not state.ok or state.row_errors:
                    raise SetupError(f"pre-registering customers failed: {state}")


def descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc's children lists), bounded in depth and count."""
    found, frontier = [], [pid]
    for _ in range(10):
        next_level = []
        for parent in frontier:
            try:
                tasks = os.listdir(f"/proc/{parent}/task")
            except OSError:
                continue
            for task in tasks:
                try:
                    next_level += [int(c) for c in Path(f"/proc/{parent}/task/{task}/children").read_text().split()]
                except (OSError, ValueError):
                    pass
        if not next_level or len(found) > 1000:
            break
        found += next_level
        frontier = next_level
    return found


def _cpu_of(pid: int | str) -> tuple[str, float]:
    """(command name, CPU seconds of the process and its reaped children) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "", 0.0
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return name, ticks / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(processes: dict[str, subprocess.Popen]) -> dict[str, float]:
    """CPU seconds used so far by each started process with its descendants, by PostgreSQL (every postgres
    process) and by this script (the load generator)."""
    result = {}
    for name, process in processes.items():
        result[name] = sum(_cpu_of(pid)[1] for pid in [process.pid, *descendants(process.pid)])
    result["postgresql"] = sum(cpu for pid in os.listdir("/proc") if pid.isdigit()
                               for comm, cpu in [_cpu_of(pid)] if comm == "postgres")
    times = os.times()
    result["load generator (this script)"] = times.user + times.system
    return result


def csv_codes(data: bytes) -> list[str]:
    """顧客コード of every data line of a cp932 CSV with a header row."""
    rows = list(csv.reader(io.StringIO(data.decode("cp932"), newline="")))
    if not rows:
        return []
    index = rows[0].index("顧客コード")
    return [row[index] for row in rows[1:] if len(row) > index]


class Browser:
    """A logged-in user: one requests.Session, CSRF token from the pages."""

    def __init__(self, base: str, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD):
        self.base = base
        self.session = requests.Session()
        page = self.session.get(f"{base}/login", timeout=30)
        token = CSRF_RE.search(page.text)
        if not token:
            raise SetupError("no CSRF token on /login")
        response = self.session.post(f"{base}/login", data={"username": user, "password": password,
                                                             "csrf_token": token.group(1)},
                                     allow_redirects=False, timeout=60)
        if response.status_code != 302:
            raise SetupError(f"login failed: HTTP {response.status_code}")

    def csrf(self, path: str) -> str:
        token = CSRF_RE.search(self.session.get(f"{self.base}{path}", timeout=60).text)
        if not token:
            raise SetupError(f"no CSRF token on {path}")
        return token.group(1)

    def start_run(self, menu_id: int, setting_id: int, memo: str) -> int:
        """The run dialog's 実行 (non-htmx form post: answered by a redirect to the run's page)."""
        path = f"/menus/{menu_id}/integrations/{setting_id}"
        token = self.csrf(f"{path}/dialog")
        response = self.session.post(f"{self.base}{path}/run", data={"csrf_token": token, "memo": memo, "q": ""},
                                     allow_redirects=False, timeout=120)
        match = re.search(r"/runs/(\d+)", response.headers.get("Location", ""))
        if response.status_code != 302 or not match:
            shown = re.search(r'class="flash flash-error"[^>]*>([^<]+)<', response.text)
            raise SetupError(f"starting the run failed: HTTP {response.status_code} "
                             f"{shown.group(1) if shown else response.text[:500]}")
        return int(match.group(1))

    def run_page(self, run_id: int) -> tuple[int, str]:
        response = self.session.get(f"{self.base}/runs/{run_id}", timeout=60)
        return response.status_code, response.text

    def rerun(self, run_id: int) -> int:
        token = self.csrf(f"/runs/{run_id}")
        response = self.session.post(f"{self.base}/runs/{run_id}/rerun", data={"csrf_token": token},
                                     allow_redirects=False, timeout=60)
        return response.status_code


def machine_lines() -> list[str]:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=5) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001
        server = "?"
    return [
        f"date            {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"machine         nproc={os.cpu_count()}  {cpu}  {platform.system()} {platform.release()}",
        f"python          {platform.python_version()}",
        f"DB backend      PostgreSQL {server}",
    ]


# ---- the virtual users ---------------------------------------------------------------------------------------


class Mix:
    """The request mix: (kind, weight, url maker, htmx)."""

    def __init__(self, ids: dict):
        menus = ids["menus"]
        invoices, pending, customers = menus["請求書一覧"], menus[INVOICE_MENU], menus["顧客一覧"]
        self.kinds = [
            ("請求書一覧 page", 30, lambda r: f"/menus/{invoices}?page={r.randint(1, 20)}", False),
            ("送信待ち請求書 page", 15, lambda r: f"/menus/{pending}?page={r.randint(1, 10)}", False),
            ("keyword search", 25, lambda r: f"/menus/{invoices}?q={requests.utils.quote(r.choice(KEYWORDS))}", False),
            ("htmx paging", 15, lambda r: f"/menus/{invoices}?page={r.randint(1, 20)}", True),
            ("顧客一覧 page", 15, lambda r: f"/menus/{customers}?page={r.randint(1, 20)}", False),
        ]
        self.weights = [k[1] for k in self.kinds]

    def pick(self, rng: random.Random):
        return rng.choices(self.kinds, weights=self.weights)[0]


def one_request(session: requests.Session, base: str, kind, rng: random.Random) -> dict:
    name, _, make_url, htmx = kind
    url = base + make_url(rng)
    headers = {"HX-Request": "true", "HX-Target": "records"} if htmx else {}
    started = time.time()
    t0 = time.perf_counter()
    status, error = 0, ""
    try:
        response = session.get(url, headers=headers, timeout=60)
        status = response.status_code
        if status != 200:
            error = f"HTTP {status}"
        elif COUNT_MARK not in response.text:
            error = "no record count in the page"
    except requests.RequestException as exc:
        error = type(exc).__name__
    return {"kind": name, "ms": (time.perf_counter() - t0) * 1000, "start": started, "end": time.time(),
            "status": status, "error": error}


def user_loop(base: str, mix: Mix, seed: int, stop: threading.Event, think: tuple[float, float],
              samples: list, lock: threading.Lock, deadline: float, login_errors: list) -> None:
    rng = random.Random(seed)
    try:
        browser = Browser(base)
    except (SetupError, requests.RequestException) as exc:
        with lock:
            login_errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return
    while not stop.is_set() and time.monotonic() < deadline:
        sample = one_request(browser.session, base, mix.pick(rng), rng)
        with lock:
            samples.append(sample)
        stop.wait(rng.uniform(*think))


def idle_phase(base: str, mix: Mix, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    browser = Browser(base)
    samples = []
    for _ in range(count):
        samples.append(one_request(browser.session, base, mix.pick(rng), rng))
        time.sleep(0.1)
    return samples


def warm_up(base: str, mix: Mix) -> None:
    """Each gunicorn process compiles templates and fills its pool on its first requests: not measured."""
    rng = random.Random(1)
    browsers = [Browser(base) for _ in range(2)]
    for _ in range(4):
        for kind in mix.kinds:
            for browser in browsers:
                one_request(browser.session, base, kind, rng)


# ---- report ------------------------------------------------------------------------------------------------------


def pad(text: str, width: int) -> str:
    """Left-justify in terminal columns (a kanji takes two)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {pct(values, 50):7.0f}  p95 {pct(values, 95):7.0f}  max {max(values):7.0f}"


def report(args, topo: Topology, info: dict, idle: list[dict], load: list[dict], runs: dict, windows: dict,
           login_errors: list[str]) -> None:
    print("\n" + "=" * 96)
    print("Load test: record lists under load while two integrations run (issue 9)")
    for line in machine_lines():
        print("  " + line)
    print("  topology        gunicorn deploy/gunicorn.conf.py 2 processes x 4 threads, 2 x worker.py + 1 scheduler"
          " (WORKER_NICE=10), emulator (own process, nice 19, import delay 2 s), PostgreSQL; all on this machine,"
          " loopback")
    print(f"  data            {info['records']:,} records: 請求書 {info['invoices']:,} (with 明細), 顧客 "
          f"{info['customers']:,}; seeded by flask seed-demo in {info['seed_s']:.0f} s")
    print(f"  load            {args.users} users, think time {args.think_min:g}-{args.think_max:g} s, "
          f"window {windows['load_s']:.0f} s, {len(load)} requests ({len(load) / max(windows['load_s'], 1):.1f}/s)")
    print(f"  load average    {' / '.join(f'{x:.2f}' for x in info['load_at_start'])} at start, "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end (1/5/15 min)")
    print("\nRuns started through POST /menus/<menu>/integrations/<setting>/run while the users browsed:")
    for label, row in runs.items():
        duration = (row["finished_at"] - row["created_at"]).total_seconds() if row.get("finished_at") else float("nan")
        print(f"  {pad(label, 44)} run {row['id']}: {STATUS_LABELS.get(row['status'], row['status'])}, "
              f"{row['record_count']:,} records in {row['call_count']} calls, ok {row['ok_count']:,}, "
              f"errors {row['error_count']:,}, {duration:.0f} s"
              + (f"  ({row['error_message'][:80]})" if row["error_message"] else ""))
    active = [s for s in load if windows["runs_from"] <= s["start"] <= windows["runs_until"]]
    both = [s for s in load if windows["runs_from"] <= s["start"] <= windows["both_until"]]
    print(f"\nLatency in ms, measured by the client over loopback (idle: 1 user, {len(idle)} requests; "
          f"under load: requests started while a run was active)")
    print(f"  {'page':<24}{'idle':<42}{'under load':<42}{'p95 ratio':>9}")
    verdicts = []
    kinds = [k[0] for k in Mix(info["ids"]).kinds]
    for kind in [*kinds, "all"]:
        idle_ms = [s["ms"] for s in idle if kind in ("all", s["kind"]) and not s["error"]]
        load_ms = [s["ms"] for s in active if kind in ("all", s["kind"]) and not s["error"]]
        ratio = pct(load_ms, 95) / pct(idle_ms, 95) if idle_ms and load_ms else float("nan")
        if ratio == ratio:  # a kind without samples in one phase has no ratio
            verdicts.append((kind, ratio))
        print(f"  {pad(kind, 24)}{summary(idle_ms):<42}{summary(load_ms):<42}{ratio:8.2f}x")
    users_only = [s["ms"] for s in load if windows["users_from"] <= s["start"] < windows["runs_from"] and not s["error"]]
    all_idle = [s["ms"] for s in idle if not s["error"]]
    ratio = pct(users_only, 95) / pct(all_idle, 95) if users_only and all_idle else float("nan")
    print(f"  {pad('(users only, no run)', 24)}{'':<42}{summary(users_only):<42}{ratio:8.2f}x  n={len(users_only)}")
    both_ms = [s["ms"] for s in both if not s["error"]]
    print(f"  {pad('(both runs active)', 24)}{'':<42}{summary(both_ms):<42}   n={len(both_ms)}")
    cpu_users, cpu_runs, cpu_end = windows["cpu"]
    users_s = windows["runs_from"] - windows["users_from"]
    runs_s = windows["runs_until"] - windows["runs_from"]
    print(f"\nCPU seconds used (2 cores = {2 * users_s:.0f} CPU-s in the {users_s:.0f} s users-only window, "
          f"{2 * runs_s:.0f} CPU-s in the {runs_s:.0f} s with runs):")
    for name in cpu_end:
        alone = cpu_runs.get(name, 0) - cpu_users.get(name, 0)
        with_runs = cpu_end.get(name, 0) - cpu_runs.get(name, 0)
        print(f"  {name:<30} users only {alone:7.1f} ({alone / users_s * 100:5.1f} % of a core)   with runs "
              f"{with_runs:7.1f} ({with_runs / runs_s * 100:5.1f} % of a core)")
    errors = [s for s in idle + load if s["error"]]
    by_error = defaultdict(int)
    for s in errors:
        by_error[f"{s['kind']}: {s['error']}"] += 1
    print(f"\nErrors: {len(errors)} of {len(idle) + len(load)} requests"
          + "".join(f"\n  {n} x {text}" for text, n in sorted(by_error.items())))
    if login_errors:
        print(f"Login failures: {len(login_errors)}: {login_errors[:3]}")
    overall = dict(verdicts).get("all", float("nan"))
    worst = max(verdicts, key=lambda v: v[1], default=("n/a", float("nan")))
    print(f"\nTarget 0 errors: {len(errors) + len(login_errors)} -> {'MET' if not errors and not login_errors else 'NOT MET'}")
    print(f"Target p95 under load < 3 x idle (all pages): {overall:.2f}x -> {'MET' if overall < 3 else 'NOT MET'}")
    print(f"       per page kind, worst: {worst[0]} {worst[1]:.2f}x -> "
          f"{'MET' if all(r < 3 for _, r in verdicts) else 'NOT MET'}")
    runs_ok = all(row["status"] in FINAL_STATUSES for row in runs.values())
    print(f"Both runs ended during the test: {'yes' if runs_ok else 'NO'}")


# ---- main --------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--invoices", type=int, default=100_000, help="records of the browsed 請求書 DB")
    parser.add_argument("--customers", type=int, default=100_000, help="records of the 顧客 DB")
    parser.add_argument("--idle-requests", type=int, default=250)
    parser.add_argument("--think-min", type=float, default=1.0)
    parser.add_argument("--think-max", type=float, default=3.0)
    parser.add_argument("--users-only", type=float, default=40.0,
                        help="seconds of load before the runs start (the users alone, for comparison)")
    parser.add_argument("--min-duration", type=float, default=60.0, help="seconds of load at least")
    parser.add_argument("--max-duration", type=float, default=300.0, help="seconds of load at most")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    args = parser.parse_args(argv)

    info: dict = {"load_at_start": os.getloadavg(), "invoices": args.invoices, "customers": args.customers,
                  "records": args.invoices + args.customers}
    topo = Topology("load_record_list")
    say(f"database {topo.db_name}, web {topo.base}, emulator {topo.emulator_root}, logs in {topo.tmp}")
    try:
        topo.create_database()
        say(f"migrating and seeding {args.invoices:,} invoices + {args.customers:,} customers …")
        info["seed_s"] = topo.prepare(args.customers, args.invoices)
        topo.start_emulator()
        topo.start_web()
        for n in (1, 2):
            topo.start_worker(f"worker-{n}")
        topo.start_scheduler()
        health = topo.wait_healthy()
        say(f"/healthz: {health.get('status', '?')}")
        ids = info["ids"] = topo.ids()
        codes = [row[0] for row in topo.query(
            "SELECT r.data->>(f.id::text) FROM records r JOIN fields f ON f.database_id = r.database_id "
            "JOIN databases d ON d.id = r.database_id WHERE d.name = '顧客' AND f.name = '顧客コード' ORDER BY r.id")]
        say(f"registering {len(codes):,} customers in the emulator's tenant …")
        topo.register_customers(codes)
        mix = Mix(ids)
        warm_up(topo.base, mix)
        say(f"idle phase: 1 user, {args.idle_requests} requests …")
        idle = idle_phase(topo.base, mix, args.idle_requests, args.seed)

        say(f"load phase: {args.users} users …")
        samples: list[dict] = []
        lock = threading.Lock()
        stop = threading.Event()
        login_errors: list[str] = []
        started = time.monotonic()
        hard_deadline = started + args.max_duration + 30
        threads = []
        for n in range(args.users):
            thread = threading.Thread(target=user_loop, daemon=True,
                                      args=(topo.base, mix, args.seed + n + 1, stop, (args.think_min, args.think_max),
                                            samples, lock, hard_deadline, login_errors))
            thread.start()
            threads.append(thread)
            time.sleep(5.0 / args.users)  # ramp-up over 5 s
        users_from = time.time()
        cpu_users = cpu_snapshot(topo.processes)
        time.sleep(args.users_only)
        operator = Browser(topo.base)
        runs_from = time.time()
        cpu_runs = cpu_snapshot(topo.processes)
        run_ids = {
            "顧客データ (" + CUSTOMER_SETTING + ")": operator.start_run(ids["menus"][CUSTOMER_MENU],
                                                                 ids["settings"][CUSTOMER_SETTING], "load test"),
            "帳票データ(CSV) (" + INVOICE_SETTING + ")": operator.start_run(ids["menus"][INVOICE_MENU],
                                                                      ids["settings"][INVOICE_SETTING], "load test"),
        }
        say(f"runs started: {run_ids}")
        both_until = runs_until = None
        cpu_end: dict = {}
        while time.monotonic() - started < args.max_duration:
            rows = topo.run_rows(list(run_ids.values()))
            # finished_at is set last, after レコード更新 and the mail (the status is final before them).
            done = [r for r in rows.values() if r["status"] in FINAL_STATUSES and r["finished_at"]]
            if done and both_until is None:
                both_until = time.time()
            if len(done) == len(run_ids):
                if runs_until is None:
                    runs_until = time.time()
                    cpu_end = cpu_snapshot(topo.processes)
                if time.monotonic() - started >= args.min_duration:
                    break
            time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
        end = time.time()
        rows = topo.run_rows(list(run_ids.values()))
        runs = {label: rows[run_id] for label, run_id in run_ids.items()}
        windows = {"load_s": time.monotonic() - started, "runs_from": runs_from, "runs_until": runs_until or end,
                   "both_until": both_until or end, "users_from": users_from,
                   "cpu": (cpu_users, cpu_runs, cpu_end or cpu_snapshot(topo.processes))}
        for label, row in runs.items():
            say(f"{label}: {row['status']}")
        report(args, topo, info, idle, samples, runs, windows, login_errors)
        bad_logs = [name for name in topo.processes if "Traceback" in (topo.tmp / f"{name}.log").read_text(errors="replace")]
        if bad_logs:
            print(f"Tracebacks in the logs of: {', '.join(bad_logs)} (see {topo.tmp}; kept)")
            args.keep = True
        return 0
    except SetupError as exc:
        say(f"SET-UP FAILED: {exc}")
        args.keep = True
        return 2
    finally:
        topo.cleanup(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
