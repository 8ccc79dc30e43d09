"""Try the production topology locally with one command (`make prod`): PostgreSQL, gunicorn, several RQ
workers, one timer scheduler, plus the 楽楽明細 emulator and demo data, as deploy/ describes it.

Steps: create the database if missing (PROD_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/meisai_prod), find or start Redis (REDIS_URL), apply pending migrations,
seed the demo data into an empty database, then start the emulator, gunicorn (deploy/gunicorn.conf.py,
GUNICORN_WORKERS=2) on 127.0.0.1:PORT (8000), PROD_WORKERS (2) × `worker.py` and one `worker.py --scheduler`.
It prints the URL, then once /healthz answers 200. Ctrl-C or SIGTERM stops everything it started.

Process supervision, Redis, ports and the demo token come from devrun.py (`make run`); only the topology
differs. Files and emulator data live in instance/prod/, apart from `make run`'s. APP_ENV defaults to
development only so the demo settings may call the emulator over plain http on loopback; for the same plain
http, SESSION_COOKIE_SECURE defaults to 0 (production's default is Secure cookies).
Run with the venv's Python: .venv/bin/python scripts/prodrun.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devrun  # noqa: E402  (sibling module: the supervisor and helpers of `make run`)
import redis_helper  # noqa: E402
from devrun import EMULATOR_PORT, INSTANCE, REPO, Failure, Supervisor, emit, redacted, say  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/meisai_prod"
PROD_DIR = INSTANCE / "prod"
HEALTH_WAIT = 120.0


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = env.get("PROD_DATABASE_URL") or DEFAULT_DATABASE_URL
    env.setdefault("REDIS_URL", redis_helper.DEFAULT_URL)
    env.setdefault("PORT", "8000")
    env.setdefault("PROD_WORKERS", "2")
    env.setdefault("GUNICORN_WORKERS", "2")
    env["GUNICORN_BIND"] = f"127.0.0.1:{env['PORT']}"
    env.setdefault("APP_ENV", "development")
    # Served over plain http on loopback: cookies must not be Secure-only, or the browser keeps no login.
    env.setdefault("SESSION_COOKIE_SECURE", "0")
    env.setdefault("FILES_DIR", str(PROD_DIR / "files"))
    env.setdefault("APP_BASE_URL", f"http://127.0.0.1:{env['PORT']}")
    env.setdefault("MEISAI_EMULATOR_URL", f"http://127.0.0.1:{EMULATOR_PORT}/demo/")
    env["MEISAI_DEMO_TOKEN"] = devrun.demo_token()
    env["FLASK_APP"] = "webapp"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_database(url: str) -> None:
    """Create the URL's database on its server when it does not exist yet (through the `postgres` database)."""
    import psycopg
    from psycopg import conninfo, sql

    url = url.replace("postgresql+psycopg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    if not url.startswith("postgresql://"):
        raise Failure(f"PROD_DATABASE_URL must be a postgresql:// URL, not {redacted(url)}")
    name = conninfo.conninfo_to_dict(url).get("dbname")
    if not name:
        raise Failure("PROD_DATABASE_URL names no database")
    try:
        with psycopg.connect(conninfo.make_conninfo(url, dbname="postgres"), autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                say(f"database {name} exists")
                return
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            say(f"created database {name}")
    except psycopg.Error as exc:
        # The class name only: libpq's message may repeat the connection string.
        raise Failure(f"cannot reach PostgreSQL at {redacted(url)} ({type(exc).__name__}); start it or set "
                      "PROD_DATABASE_URL") from None


def service_commands(env: dict[str, str]) -> list[tuple[str, list[str]]]:
    py = sys.executable
    commands = [
        ("emulator", [py, "-m", "meisai_emulator", "--host", "127.0.0.1", "--port", str(EMULATOR_PORT),
                      "--data-dir", str(PROD_DIR / "emulator")]),
        ("web", [py, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"), "webapp:create_app()"]),
    ]
    commands += [(f"worker-{n}", [py, "worker.py"]) for n in range(1, int(env["PROD_WORKERS"]) + 1)]
    commands.append(("scheduler", [py, "worker.py", "--scheduler"]))
    return commands


def print_banner(env: dict[str, str]) -> None:
    password = os.environ.get("DEMO_ADMIN_PASSWORD") or "admin"
    base = f"http://127.0.0.1:{env['PORT']}"
    bar = "=" * 68
    for line in (
        bar,
        "  楽楽明細連携 本番構成で起動しました / Running the production topology",
        f"  URL: {base}/",
        f"  ログイン / Login: admin / {password}",
        f"  稼働状況: {base}/admin/status    ヘルスチェック: {base}/healthz",
        f"  gunicorn ×{env['GUNICORN_WORKERS']}, worker ×{env['PROD_WORKERS']}, scheduler ×1, "
        f"DB {redacted(env['DATABASE_URL'])}",
        f"  エミュレーター / Emulator UI: http://127.0.0.1:{EMULATOR_PORT}/",
        "  Ctrl-C で停止 / Ctrl-C to stop",
        bar,
    ):
        emit(line)


def health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.load(error)
        except ValueError:
            return error.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def run(supervisor: Supervisor) -> None:
    env = supervisor.env
    port = int(env["PORT"])
    devrun.ensure_port_free(port, "web, set PORT to change it")
    devrun.ensure_port_free(EMULATOR_PORT, "emulator; is `make run` running?")
    say(f"database: {redacted(env['DATABASE_URL'])}")
    ensure_database(env["DATABASE_URL"])
    devrun.ensure_redis(supervisor)
    flask = [sys.executable, "-m", "flask", "--app", "webapp"]
    supervisor.run_step("db", [*flask, "db", "upgrade"])
    supervisor.run_step("db", [*flask, "ensure-indexes"])
    supervisor.run_step("seed", [*flask, "seed-demo"])
    (PROD_DIR / "emulator").mkdir(parents=True, exist_ok=True)
    started = {name: supervisor.start(name, argv) for name, argv in service_commands(env)}
    timeout = float(env.get("DEVRUN_START_TIMEOUT", "90"))
    base = f"http://127.0.0.1:{port}"
    devrun.wait_for_http(supervisor, started["emulator"], f"http://127.0.0.1:{EMULATOR_PORT}/", timeout)
    devrun.wait_for_http(supervisor, started["web"], f"{base}/login", timeout)
    print_banner(env)
    # Workers register and the scheduler's start-up dispatch beats within seconds; say so once.
    deadline = time.monotonic() + HEALTH_WAIT
    waiting = True
    while True:
        supervisor.check_alive()
        if waiting:
            status, body = health(base)
            if status == 200:
                say(f"/healthz: {json.dumps(body, ensure_ascii=False)}")
                waiting = False
            elif time.monotonic() > deadline:
                say(f"/healthz still {status} after {HEALTH_WAIT:.0f} s: {json.dumps(body, ensure_ascii=False)}")
                waiting = False
            else:
                time.sleep(1.0)
                continue
        time.sleep(0.3)


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    argparse.ArgumentParser(description=__doc__, formatter_class=formatter).parse_args()
    sys.stdout.reconfigure(errors="replace")
    devrun.LOG_TAG = "prodrun"
    PROD_DIR.mkdir(parents=True, exist_ok=True)
    return devrun.supervise(build_env(), run)


if __name__ == "__main__":
    sys.exit(main())
