"""Benchmark: the レコード一覧 page of a DB with 100,000 records, over real HTTP.

Requirement: seed 100,000 records in one DB, then measure the record-list page (50 rows, one filter,
sorted) over real HTTP; report p50/p95 server time and the seeding rate.
Targets on the 2-core reference machine: list page p95 < 150 ms, seeding 100k records < 30 s.

What it does:
  1. creates a fresh database (SQLite file in a temp dir, or with --database-url a PostgreSQL database that
     this script creates and drops again), builds the schema with db.create_all(), adds an admin user, a DB
     「請求書(ベンチ)」 with 12 header fields and seeds --records records in bulk (the same pieces as the demo
     seed: insert(Record) + build_search_text), timing it;
  2. creates a レコード一覧 menu: 8 columns, filter 連携ステータス = 未連携 (70 % of the records), sorted by
     請求日 descending, 50 rows per page;
  3. serves the app in a separate process with werkzeug's threaded server (the server `flask run` uses, and
     the one `make run` starts) or gunicorn (--server gunicorn, when installed), logs in through the real
     /login form and requests the list --requests times: random pages 1-20, every 4th request with a
     keyword (q=); then a few fixed scenarios (keyword only, page 1000, htmx fragment, a column-header sort).

Times: "client" is measured by this script over loopback (connection kept alive); "server" is what a small
WSGI wrapper in the server process (part of this script, not of the product) measured from the request
entering the app to the last byte of the body, sent back in a Server-Timing header together with the time
spent inside SQL statements (count query, page query, other queries).

Run:  .venv/bin/python bench/bench_record_list.py
      .venv/bin/python bench/bench_record_list.py --database-url postgresql://postgres@127.0.0.1:5432/bench_records
Exit status is 0 whether or not the targets are met (it reports, it does not judge); 2 on a setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DB_NAME = "請求書(ベンチ)"
MENU_NAME = "請求書一覧(ベンチ)"
TARGET_P95_MS = 150.0
TARGET_SEED_S = 30.0
ADMIN_USER, ADMIN_PASSWORD = "admin", "bench-pass-2026"
SECRET_KEY = "bench-secret-key-not-used-elsewhere"
# Keywords a person would type: a company stem (~5 % of rows), a surname, a customer code, two words.
KEYWORDS = ["富士", "佐藤", "C01234", "桜 保守", "みなと", "INV-2025", "保守料金"]


# ---- app configuration (shared by this process and the server process) --------------------------------


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_app(database_url: str, instance: Path):
    from webapp import create_app

    return create_app(
        {
            "APP_ENV": "bench",
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url),
            "FILES_DIR": str(instance / "files"),
        },
        instance_path=str(instance),
    )


# ---- PostgreSQL: a database of our own --------------------------------------------------------------


def pg_admin_url(url: str) -> tuple[str, str]:
    """(URL of the maintenance DB 'postgres' on the same server, name of the bench DB)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name or ""):
        raise SystemExit(f"--database-url must name the database to create (letters, digits, _): {url}")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def pg_create(url: str) -> None:
    import psycopg

    admin, name = pg_admin_url(url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            # Never drop a database this run did not create.
            raise SystemExit(f"database {name} already exists; choose another name (this script drops it at the end)")
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(url: str) -> None:
    import psycopg

    admin, name = pg_admin_url(url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- seeding ------------------------------------------------------------------------------------------


FIELDS = [
    ("請求番号", "text", {"required": True}),
    ("顧客コード", "text", {"required": True}),
    ("取引先", "text", {}),
    ("担当者名", "text", {}),
    ("請求日", "date", {"required": True}),
    ("請求金額", "number", {}),
    ("支払期限", "date", {}),
    ("件名", "text", {}),
    ("連携ステータス", "select", {"options": ["未連携", "連携済"]}),
    ("支払方法", "select", {"options": ["銀行振込", "口座振替", "クレジットカード"]}),
    ("連携日時", "datetime", {}),
    ("備考", "textarea", {}),
]
MENU_COLUMNS = ["請求番号", "顧客コード", "取引先", "請求日", "請求金額", "支払期限", "件名", "連携ステータス"]


def invoice_values(count: int, rng: random.Random):
    """`count` realistic invoice header values keyed by field name (3 years of dates, 5,000 customers)."""
    from webapp.demo import COMPANY_KINDS, COMPANY_STEMS, GIVEN, SUBJECTS, SURNAMES

    customers = [
        (f"C{i:05d}", f"株式会社{rng.choice(COMPANY_STEMS)}{rng.choice(COMPANY_KINDS)}",
         f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}")
        for i in range(1, 5001)
    ]
    first = dt.date(2024, 1, 1)
    remarks = ["", "", "", "", "請求書原本を郵送", "支払条件: 月末締め翌月末払い", "担当者変更あり"]
    for number in range(1, count + 1):
        code, company, person = customers[rng.randrange(len(customers))]
        issued = first + dt.timedelta(days=rng.randrange(3 * 365))
        sent = rng.random() < 0.3
        values = {
            "請求番号": f"INV-{issued:%Y%m}-{number:06d}",
            "顧客コード": code,
            "取引先": company,
            "担当者名": person,
            "請求日": issued.isoformat(),
            "請求金額": rng.randrange(1000, 5_000_000),
            "支払期限": (issued + dt.timedelta(days=30)).isoformat(),
            "件名": rng.choice(SUBJECTS).format(month=issued.month),
            "連携ステータス": "連携済" if sent else "未連携",
            "支払方法": rng.choice(["銀行振込", "銀行振込", "口座振替", "クレジットカード"]),
            "連携日時": f"{issued + dt.timedelta(days=1)} {rng.randrange(9, 19):02d}:{rng.randrange(60):02d}"
            if sent else None,
            "備考": rng.choice(remarks),
        }
        yield {k: v for k, v in values.items() if v not in (None, "")}


def setup_and_seed(app, records: int, batch: int, seed: int, explain: bool = False) -> dict:
    from webapp.auth.operations import create_user
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

    with app.app_context():
        db.create_all()
        admin = create_user(ADMIN_USER, ADMIN_PASSWORD, display_name="管理 太郎", is_admin=True)
        database = create_database(DB_NAME, "ベンチマーク用の請求書DBです。")
        fields = {name: add_field(database, FieldSpec(name=name, field_type=kind, **extra))
                  for name, kind, extra in FIELDS}
        rng = random.Random(seed)
        started = time.perf_counter()
        # The product's bulk path (streamed in batches, statistics refreshed at the end).
        done = bulk_insert_records(database, (({fields[name].key: value for name, value in item.items()}, [])
                                              for item in invoice_values(records, rng)), admin.id, batch=batch)
        db.session.commit()
        seed_s = time.perf_counter() - started

        print(f"\r  seeded {done:,} records in {seed_s:.1f} s")
        menu = create_menu(database, MenuSpec(
            name=MENU_NAME,
            column_field_ids=[fields[name].id for name in MENU_COLUMNS],
            filters=[FilterSpec(field_id=fields["連携ステータス"].id, operator="eq", value="未連携")],
            sort_field_id=fields["請求日"].id,
            sort_desc=True,
            page_size=50,
        ))
        db.session.commit()
        info = {
            "seed_s": seed_s,

            "menu_id": menu.id,
            "sort_alt_field_id": fields["請求金額"].id,
            "dialect": db.engine.dialect.name,
            "server_version": ".".join(str(p) for p in db.engine.dialect.server_version_info or ()),
        }
        if explain:
            info["plans"] = explain_list_queries(menu)
        db.session.remove()
        db.engine.dispose()
    return info


def explain_list_queries(menu) -> list[str]:
    """The query plans of the statements the record list runs for page 1 and page 1000 (as sent, with the
    same parameters): EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL."""
    from sqlalchemy import event

    from webapp.databases.query import menu_page
    from webapp.extensions import db

    engine = db.engine
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM records" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        menu_page(menu, "", 1)
        menu_page(menu, "", 1000)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    lines = []
    with engine.connect() as conn:
        for statement, parameters in captured:
            lines.append(" ".join(statement.split()) + f"   -- {parameters}")
            for row in conn.exec_driver_sql(prefix + statement, parameters):
                lines.append("    " + str(row[0] if postgres else row[-1]))
            lines.append("")
    return lines


# ---- the server process --------------------------------------------------------------------------------


class _Timing(threading.local):
    def __init__(self):
        self.active = False
        self.count = self.page = self.other = 0.0
        self.queries = 0


def timed_wsgi_app(database_url: str, instance: Path):
    """The product's app, wrapped to report server and SQL time in a Server-Timing header."""
    from sqlalchemy import event

    from webapp.extensions import db

    app = make_app(database_url, instance)
    timing = _Timing()

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info["bench_t0"].pop()
        if not timing.active:
            return
        timing.queries += 1
        head = statement.lstrip()[:40].lower()
        if head.startswith("select count("):
            timing.count += elapsed
        elif "from records" in statement.lower() and "limit" in statement.lower():
            timing.page += elapsed
        else:
            timing.other += elapsed

    def wsgi(environ, start_response):
        timing.active, timing.count, timing.page, timing.other, timing.queries = True, 0.0, 0.0, 0.0, 0
        started = time.perf_counter()
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None

        body_iter = app.wsgi_app(environ, capture)
        try:
            body = b"".join(body_iter)
        finally:
            if hasattr(body_iter, "close"):
                body_iter.close()
        total = (time.perf_counter() - started) * 1000
        timing.active = False
        header = (f"app;dur={total:.2f}, db-count;dur={timing.count * 1000:.2f}, "
                  f"db-page;dur={timing.page * 1000:.2f}, db-other;dur={timing.other * 1000:.2f}, "
                  f"queries;desc={timing.queries}")
        start_response(captured["status"], list(captured["headers"]) + [("Server-Timing", header)],
                       captured["exc_info"])
        return [body]

    return wsgi


def serve(args) -> None:
    """Entry of the server process (werkzeug): never returns until SIGTERM."""
    import logging

    from werkzeug.serving import make_server

    wsgi = timed_wsgi_app(args.database_url, Path(args.instance))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", args.port, wsgi, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def gunicorn_app():
    """Entry for gunicorn (--server gunicorn): settings come from BENCH_* environment variables."""
    return timed_wsgi_app(os.environ["BENCH_DATABASE_URL"], Path(os.environ["BENCH_INSTANCE"]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind: str, database_url: str, instance: Path, workers: int) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = instance / "server.log"
    env = dict(os.environ, BENCH_DATABASE_URL=database_url, BENCH_INSTANCE=str(instance), PYTHONPATH=str(REPO))
    if kind == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn", "--chdir", str(Path(__file__).parent), "-b", f"127.0.0.1:{port}",
                "-w", str(workers), "--threads", "4", "--log-level", "warning",
                "bench_record_list:gunicorn_app()"]
    else:
        argv = [sys.executable, __file__, "--_serve", "--database-url", database_url, "--instance", str(instance),
                "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, base, log
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("server did not start within 30 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---- the client ---------------------------------------------------------------------------------------


def login(session, base: str) -> None:
    page = session.get(f"{base}/login", timeout=30)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    if not token:
        raise SystemExit("no CSRF token on /login")
    response = session.post(f"{base}/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD,
                                                   "csrf_token": token.group(1)},
                            allow_redirects=False, timeout=30)
    if response.status_code != 302:
        raise SystemExit(f"login failed: HTTP {response.status_code}")


def server_timing(response) -> dict[str, float]:
    values = {}
    for part in response.headers.get("Server-Timing", "").split(","):
        name, _, rest = part.strip().partition(";")
        match = re.search(r"dur=([\d.]+)", rest)
        if match:
            values[name] = float(match.group(1))
    return values


COUNT_RE = re.compile(r'id="record-count">\s*([\d,]+)件中 ([\d,]+)〜([\d,]+)件')


def fetch(session, url: str, htmx: bool = False) -> dict:
    headers = {"HX-Request": "true", "HX-Target": "records"} if htmx else {}
    started = time.perf_counter()
    response = session.get(url, headers=headers, timeout=120)
    client_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: HTTP {response.status_code}")
    text = response.text
    match = COUNT_RE.search(text)
    if not match:
        raise SystemExit(f"GET {url}: no record count in the page (not logged in?)")
    if htmx and "<html" in text:
        raise SystemExit(f"GET {url} with HX-Request: expected the list fragment, got a whole page")
    rows = text.count("<tr>") - 1  # minus the header row
    return {"client": client_ms, **server_timing(response), "total": int(match.group(1).replace(",", "")),
            "first": int(match.group(2).replace(",", "")), "rows": rows}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summarize(samples: list[dict], key: str) -> str:
    values = [s[key] for s in samples if key in s]
    if not values:
        return "n/a"
    return f"p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  max {max(values):7.1f}"


def report_block(title: str, samples: list[dict]) -> None:
    print(f"\n{title} ({len(samples)} requests, ms)")
    print(f"  client (loopback)     {summarize(samples, 'client')}")
    print(f"  server (app total)    {summarize(samples, 'app')}")
    print(f"    SQL count query     {summarize(samples, 'db-count')}")
    print(f"    SQL page query      {summarize(samples, 'db-page')}")
    print(f"    SQL other queries   {summarize(samples, 'db-other')}")
    rest = [{"x": s["app"] - s.get("db-count", 0) - s.get("db-page", 0) - s.get("db-other", 0)}
            for s in samples if "app" in s]
    print(f"    Python (ORM+render) {summarize(rest, 'x')}")


def run_requests(base: str, menu_id: int, count: int, seed: int, alt_sort: int) -> dict[str, list[dict]]:
    import requests

    session = requests.Session()
    login(session, base)
    list_url = f"{base}/menus/{menu_id}"
    results: dict[str, list[dict]] = {}

    first = fetch(session, list_url)
    results["first"] = [first]
    if first["rows"] != 50:
        raise SystemExit(f"expected 50 rows on page 1, got {first['rows']}")
    # Warm-up (imports, template compilation, connection pool), not counted.
    for page in (2, 3):
        fetch(session, f"{list_url}?page={page}")

    rng = random.Random(seed)
    mixed = []
    for i in range(count):
        params = {"page": rng.randint(1, 20)}
        if i % 4 == 3:
            params["q"] = rng.choice(KEYWORDS)
            params["page"] = rng.randint(1, 3)
        mixed.append(fetch(session, f"{list_url}?{urlencode(params)}"))
    results["mixed"] = mixed

    scenarios = {
        "keyword": lambda i: f"{list_url}?{urlencode({'q': KEYWORDS[i % len(KEYWORDS)]})}",
        "page1000": lambda i: f"{list_url}?page={1000 - i % 3}",
        "htmx": lambda i: f"{list_url}?page={i % 20 + 1}",
        "sort": lambda i: f"{list_url}?sort={alt_sort}&desc={i % 2}&page={i % 5 + 1}",
    }
    repeat = max(10, count // 10)
    for name, make_url in scenarios.items():
        results[name] = [fetch(session, make_url(i), htmx=(name == "htmx")) for i in range(repeat)]
    return results


# ---- main ---------------------------------------------------------------------------------------------


def machine_summary(dialect: str, server_version: str, server_kind: str, workers: int) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    backend = f"SQLite {sqlite3.sqlite_version}" if dialect == "sqlite" else f"PostgreSQL {server_version}"
    server = ("werkzeug threaded server in a separate process (as `flask run`)" if server_kind == "werkzeug"
              else f"gunicorn, {workers} workers x 4 threads, separate process")
    return [
        f"date            {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"machine         nproc={os.cpu_count()}  {cpu}  {platform.system()} {platform.release()}",
        f"python          {platform.python_version()}  (sqlite3 module: SQLite {sqlite3.sqlite_version})",
        f"DB backend      {backend}",
        f"HTTP server     {server}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="records to seed (default 100000)")
    parser.add_argument("--requests", type=int, default=200, help="list requests in the mixed run (default 200)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per INSERT batch (default 10000)")
    parser.add_argument("--database-url", default="",
                        help="postgresql://user@host:port/NEW_DB_NAME (created, then dropped); default: SQLite in a temp dir")
    parser.add_argument("--server", choices=["werkzeug", "gunicorn"], default="werkzeug")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed for data and request mix")
    parser.add_argument("--explain", action="store_true", help="also print the query plans of the list queries")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file) afterwards")
    parser.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._serve:
        serve(args)
        return 0
    if args.server == "gunicorn":
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            print("gunicorn is not installed in this Python; use --server werkzeug", file=sys.stderr)
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-record-list-"))
    instance = tmp / "instance"
    instance.mkdir()
    postgres = args.database_url.startswith(("postgresql://", "postgres://"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    if args.database_url and not postgres:
        print("--database-url must be a postgresql:// URL (SQLite is the default)", file=sys.stderr)
        return 2
    if postgres:
        pg_create(database_url)
    process = None
    try:
        print(f"Seeding {args.records:,} records ({'PostgreSQL' if postgres else 'SQLite'}, batches of {args.batch:,}) …")
        app = make_app(database_url, instance)
        info = setup_and_seed(app, args.records, args.batch, args.seed, args.explain)
        del app
        process, base, log = start_server(args.server, database_url, instance, args.workers)
        print(f"Server at {base}; {args.requests} mixed list requests + scenarios …")
        results = run_requests(base, info["menu_id"], args.requests, args.seed, info["sort_alt_field_id"])
    finally:
        if process is not None:
            stop_server(process)
        if postgres:
            pg_drop(database_url)

    first = results["first"][0]
    print("\n" + "=" * 78)
    print("Record list benchmark (レコード一覧)")
    for line in machine_summary(info["dialect"], info["server_version"], args.server, args.workers):
        print("  " + line)
    print(f"  data            {args.records:,} records in one DB, 12 header fields; menu: 8 columns, "
          f"filter 連携ステータス=未連携 ({first['total']:,} rows), sort 請求日 desc, 50/page")
    if not postgres:
        print(f"  SQLite file     {(tmp / 'bench.sqlite3').stat().st_size / 1e6:.1f} MB")
    rate = args.records / info["seed_s"]
    print(f"\nSeeding         {info['seed_s']:.1f} s for {args.records:,} records = {rate:,.0f} records/s "
          f"(product path: bulk_insert_records, batches of {args.batch:,}, ANALYZE at the end)"
          f"\n                target < {TARGET_SEED_S:.0f} s per 100,000 records: "
          f"{'MET' if 100_000 / rate < TARGET_SEED_S else 'NOT MET'} ({100_000 / rate:.1f} s per 100,000)")
    print(f"First request   client {first['client']:.1f} ms, server {first.get('app', float('nan')):.1f} ms (cold)")
    report_block("Mixed list requests: page 1-20, every 4th with a keyword", results["mixed"])
    report_block("Keyword search only (q=, page 1)", results["keyword"])
    deep = results["page1000"][0]
    report_block(f"Deep page (page 998-1000 asked, page {(deep['first'] - 1) // 50 + 1} served, "
                 f"OFFSET {deep['first'] - 1:,})", results["page1000"])
    report_block("htmx fragment (paging/search swap, no layout)", results["htmx"])
    report_block("Column-header sort by 請求金額 (number), pages 1-5", results["sort"])
    mixed_p95 = pct([s.get("app", s["client"]) for s in results["mixed"]], 95)
    print(f"\nTarget p95 < {TARGET_P95_MS:.0f} ms (server time, mixed): {mixed_p95:.1f} ms -> "
          f"{'MET' if mixed_p95 < TARGET_P95_MS else 'NOT MET'}")
    print("Client times are measured over loopback by this script; server times come from a WSGI wrapper in the")
    print("server process (request in -> last body byte), SQL times from SQLAlchemy cursor events.")
    if info.get("plans"):
        print("\nQuery plans of the list statements (page 1, then page 1000):")
        for line in info["plans"]:
            print("  " + line)
    if args.keep:
        print(f"Kept: {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
