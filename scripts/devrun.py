"""Run the whole product locally with one command (`make run`): Redis if needed, migrations, demo data,
the 楽楽明細 emulator, the web app and the RQ worker, with each process's output prefixed by its name.

Everything lives under instance/ (SQLite DB, secret key, demo API token, emulator data), so a second run
resumes where the first stopped. Settings come from the environment, with local defaults:
DATABASE_URL, REDIS_URL, PORT (5000), MEISAI_DEMO_TOKEN, DEMO_ADMIN_PASSWORD, DEVRUN_START_TIMEOUT (s).

Ctrl-C or SIGTERM stops every process started here (SIGTERM, then SIGKILL after 10 s), including a Redis
started here; a Redis that was already running is left alone. If any process exits on its own, the rest
are stopped and the exit status is 1. Run with the venv's Python: .venv/bin/python scripts/devrun.py
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redis_helper  # noqa: E402  (sibling module, shared with run_tests.sh)

REPO = Path(__file__).resolve().parent.parent
INSTANCE = REPO / "instance"
EMULATOR_PORT = 5055
STOP_TIMEOUT = 10.0
TAIL_LINES = 20
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

_print_lock = threading.RLock()


def emit(line: str) -> None:
    """Write one whole line; the lock keeps lines from different children from interleaving."""
    with _print_lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            pass


# prodrun.py reuses this module's pieces and sets its own name here.
LOG_TAG = "devrun"


def say(message: str) -> None:
    emit(f"[{LOG_TAG}] {message}")


def redacted(url: str) -> str:
    """The URL with any password hidden, for log lines."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Stop(Exception):
    """SIGINT/SIGTERM/SIGHUP asked us to stop."""


class Failure(Exception):
    """Start-up or a child failed; the message says which and why."""

    def __init__(self, message: str, child: Child | None = None):
        super().__init__(message)
        self.child = child


class Child:
    """A process started here, in its own session so only we decide when it stops (a terminal's Ctrl-C
    reaches devrun alone) and so signals reach its whole process group (e.g. RQ's work horses)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name = name
        self.argv = argv
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._pump, name=f"pump-{name}", daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(line)
            emit(f"[{self.name}] {line}")

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    @property
    def gone(self) -> bool:
        """True when the child exited and nothing is left in its process group (e.g. RQ's work horse)."""
        return self.exited and not self.signal_group(0)

    def signal_group(self, sig: int) -> bool:
        """Signal the child's process group; False when nothing of it is left."""
        try:
            os.killpg(self.process.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def show_tail(self) -> None:
        self.reader.join(timeout=2)
        if self.tail:
            say(f"last output of [{self.name}]:")
            for line in self.tail:
                emit(f"    {line}")


class Supervisor:
    """Starts children, watches them, and stops all of them exactly once."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: list[Child] = []
        self.force = False

    def start(self, name: str, argv: list[str]) -> Child:
        # A stop signal waits until the child is on the list, so a Ctrl-C cannot leave it running
        # untracked. (Not via a blocked signal mask: children would inherit it and ignore SIGTERM.)
        _deferred.active = True
        try:
            child = Child(name, argv, self.env)
            self.children.append(child)
        finally:
            _deferred.active = False
        if _deferred.pending:
            raise Stop(_deferred.pending)
        return child

    def run_step(self, name: str, argv: list[str]) -> None:
        """Run a one-off command to completion (still stoppable with Ctrl-C)."""
        child = self.start(name, argv)
        while child.process.poll() is None:
            time.sleep(0.1)
        child.reader.join(timeout=2)
        self.children.remove(child)
        if child.process.returncode != 0:
            # Its whole output is just above, so no tail is repeated.
            shown = " ".join(argv[2:] if argv[1:2] == ["-m"] else ["python", *argv[1:]])
            raise Failure(f"`{shown}` failed ({child.describe_exit()})")

    def check_alive(self) -> None:
        for child in self.children:
            if child.exited:
                raise Failure(f"[{child.name}] exited unexpectedly ({child.describe_exit()})", child)

    def stop_all(self) -> None:
        """Stop the app processes, then a Redis we started (the worker needs it to shut down cleanly)."""
        # A second Ctrl-C while stopping skips the grace period instead of aborting the clean-up.
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_second_signal)
        services = [c for c in self.children if c.name != "redis"]
        redis = [c for c in self.children if c.name == "redis"]
        for group in (services, redis):
            if group:
                self._stop_group(group)
        self.children.clear()

    def _on_second_signal(self, signum, frame) -> None:
        self.force = True

    def _stop_group(self, group: list[Child]) -> None:
        for child in group:
            if not child.exited:
                say(f"stopping [{child.name}] (pid {child.process.pid})")
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and not self.force:
            # A list, not a generator: every leader gets reaped, or its zombie would count as alive.
            if all([child.gone for child in group]):
                break
            time.sleep(0.1)
        for child in group:
            if not child.gone:
                say(f"[{child.name}] did not stop in time; killing it")
                child.signal_group(signal.SIGKILL)
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                say(f"[{child.name}] (pid {child.process.pid}) could not be killed")
            child.reader.join(timeout=2)


class _Deferred:
    active = False
    pending = ""


_deferred = _Deferred()


def _raise_stop(signum, frame) -> None:
    name = signal.Signals(signum).name
    if _deferred.active:
        _deferred.pending = name
        return
    raise Stop(name)


def demo_token() -> str:
    """The emulator's demo API token: from the environment, else kept in instance/ across restarts."""
    configured = os.environ.get("MEISAI_DEMO_TOKEN")
    if configured:
        return configured
    path = INSTANCE / "meisai_demo_token"
    if path.exists() and path.read_text().strip():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    # Created owner-only before the token is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{INSTANCE / 'app.sqlite3'}")
    env.setdefault("REDIS_URL", redis_helper.DEFAULT_URL)
    env.setdefault("PORT", "5000")
    env.setdefault("MEISAI_EMULATOR_URL", f"http://127.0.0.1:{EMULATOR_PORT}/demo/")
    env["APP_ENV"] = "development"
    env["FLASK_APP"] = "webapp"
    env["MEISAI_DEMO_TOKEN"] = demo_token()
    # Children write to pipes; unbuffered output keeps the prefixed log live.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def worker_has_scheduler() -> bool:
    """The timer scheduler runs only once worker.py offers `--scheduler`."""
    if not (REPO / "worker.py").exists():
        return False
    try:
        result = subprocess.run(
            [sys.executable, "worker.py", "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return "--scheduler" in result.stdout


def service_commands(env: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Every long-running process of the product, in start order; add new services here."""
    py = sys.executable
    commands = [
        (
            "emulator",
            [py, "-m", "meisai_emulator", "--host", "127.0.0.1", "--port", str(EMULATOR_PORT)]
            + ["--data-dir", str(INSTANCE / "emulator")],
        ),
        (
            "web",
            [py, "-m", "flask", "--app", "webapp", "run", "--host", "127.0.0.1", "--port", env["PORT"]]
            + ["--no-reload", "--no-debugger"],
        ),
        ("worker", [py, "worker.py"]),
    ]
    if worker_has_scheduler():
        commands.append(("scheduler", [py, "worker.py", "--scheduler"]))
    return commands


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        # Like the servers themselves: TIME_WAIT leftovers of a previous run do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise Failure(f"port {port} ({what}) is already in use; stop whatever uses it") from None


def ensure_redis(supervisor: Supervisor) -> None:
    url = supervisor.env["REDIS_URL"]
    if redis_helper.ping(url):
        say(f"using the Redis already running at {redacted(url)}")
        return
    say(f"no Redis at {redacted(url)}; starting one")
    try:
        command = redis_helper.server_command(url)
    except redis_helper.RedisUnavailable as exc:
        raise Failure(str(exc)) from None
    child = supervisor.start("redis", command)
    try:
        redis_helper.wait_ready(url, child.process)
    except redis_helper.RedisUnavailable as exc:
        raise Failure(str(exc), child) from None


def wait_for_http(supervisor: Supervisor, child: Child, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise Failure(f"[{child.name}] did not answer on {url} within {timeout:.0f} s", child)


def print_banner(env: dict[str, str]) -> None:
    password = os.environ.get("DEMO_ADMIN_PASSWORD") or "admin"
    bar = "=" * 68
    for line in (
        bar,
        "  楽楽明細連携 を起動しました / The app is running",
        f"  URL: http://127.0.0.1:{env['PORT']}/",
        f"  ログイン / Login: admin / {password}  (管理者 / administrator)",
        "                   user / user    (一般ユーザ / a normal user)",
        "                   keiri / keiri  (DB設定 + システム連携)",
        f"  エミュレーター / Emulator UI: http://127.0.0.1:{EMULATOR_PORT}/",
        "  Ctrl-C で停止 / Ctrl-C to stop",
        bar,
    ):
        emit(line)


def run(supervisor: Supervisor) -> None:
    env = supervisor.env
    port = int(env["PORT"])
    ensure_port_free(port, "web, set PORT to change it")
    ensure_port_free(EMULATOR_PORT, "emulator")
    say(f"database: {redacted(env['DATABASE_URL'])}")
    ensure_redis(supervisor)
    flask = [sys.executable, "-m", "flask", "--app", "webapp"]
    supervisor.run_step("db", [*flask, "db", "upgrade"])
    supervisor.run_step("db", [*flask, "ensure-indexes"])
    supervisor.run_step("seed", [*flask, "seed-demo"])
    (INSTANCE / "emulator").mkdir(exist_ok=True)
    started = {name: supervisor.start(name, argv) for name, argv in service_commands(env)}
    timeout = float(env.get("DEVRUN_START_TIMEOUT", "90"))
    wait_for_http(supervisor, started["emulator"], f"http://127.0.0.1:{EMULATOR_PORT}/", timeout)
    wait_for_http(supervisor, started["web"], f"http://127.0.0.1:{port}/", timeout)
    print_banner(env)
    while True:
        supervisor.check_alive()
        time.sleep(0.3)


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    argparse.ArgumentParser(description=__doc__, formatter_class=formatter).parse_args()
    sys.stdout.reconfigure(errors="replace")
    INSTANCE.mkdir(exist_ok=True)
    return supervise(build_env(), run)


def supervise(env: dict, start) -> int:
    """Run `start(supervisor)` until Ctrl-C/SIGTERM or a failure, then stop every child; the exit status."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stop)
    supervisor = Supervisor(env)
    status = 0
    try:
        start(supervisor)
    except Stop as stop:
        say(f"{stop} received; stopping")
    except Failure as failure:
        status = 1
        say(f"ERROR: {failure}")
        if failure.child is not None:
            failure.child.show_tail()
        say("stopping everything")
    finally:
        supervisor.stop_all()
    say("all processes stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
