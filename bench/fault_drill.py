"""Fault drill: a worker SIGKILLed in the middle of a 100,000-record run, and PostgreSQL restarted during a run
(issue 9). Prints its findings; exit 0 when every check passed, 1 when one failed, 2 when the set-up failed.

    .venv/bin/python bench/fault_drill.py                    # 3+1 kill rounds + the PostgreSQL restart, ~6-8 min
    .venv/bin/python bench/fault_drill.py --rounds 5 --skip-pg-restart

Set-up (the pieces of bench/load_record_list.py): a fresh PostgreSQL database (dropped at the end), `flask
seed-demo --customers 100000` (the demo's 顧客データ integration「楽楽明細へ顧客を連携」 with レコード更新), the
emulator as its own process (import delay 2 s), gunicorn (deploy/gunicorn.conf.py, 2 processes) and 2 × worker.py,
every process with RUN_STALE_SECONDS=5 and RUN_POLL_MAX_INTERVAL=2 (so a live run beats well within 5 s).
Redis DB 13, a queue name of our own, loopback only.

Kill round (--rounds times): the records are set back to 未連携; an operator (a logged-in admin session) starts
the run with the 実行 form; 100,000 customers are split into 10 calls of 10,000. Once a call chosen at random
(2nd-8th) is being sent or polled, and after a random 0-1 s more, the worker whose work-horse runs the job is
SIGKILLed together with the horse. The operator then reloads GET /runs/<id> (which finds the silent run) until it
shows 中断 with its explanation, presses 再実行 (POST /runs/<id>/rerun); the surviving worker continues the run.
The killed worker is started again afterwards (as systemd would). --post-rounds more rounds (default 1) kill the
worker the moment its call is persisted 送信中, i.e. with the POST in flight: the 要確認 path.
PostgreSQL round: the same run, and `pg_ctlcluster --skip-systemctl-redirect <ver> <cluster> restart` while a
call is in flight; the operator reloads the page and presses 再実行 whenever it shows 中断, until the run ends.
PostgreSQL is started again in a finally block whatever happens.

Checks of every round, from what the emulator received (its admin API lists the imports; the CSV of each import
is read from the emulator's data dir, which this script owns; the state API's `total` is cross-checked):
  * no 顧客コード was received twice, and nothing else was received;
  * every customer was received once, except those of a call marked 要確認 (the kill or restart hit its POST):
    those are neither resent nor counted as sent; whether 楽楽明細 got them is reported (the operator must look);
  * the run ends (never 実行中 for ever) in 完了, or 要確認 for exactly those calls, and the status page explains it.
The output counts how often the fault hit a POST.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_record_list import (  # noqa: E402  (sibling bench module: topology and HTTP helpers)
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    FINAL_STATUSES,
    STATUS_LABELS,
    Browser,
    SetupError,
    Topology,
    csv_codes,
    machine_lines,
    say,
)

STALE_SECONDS = 5
INTERRUPTED_TEXT = "処理が途中で止まりました"
CRASH_TEXT = "システムエラーで処理が中断しました"


# ---- PostgreSQL control --------------------------------------------------------------------------------------


def pg_cluster() -> tuple[str, str]:
    """(version, cluster name) of the cluster on port 5432, from pg_lsclusters."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=30, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "5432":
            return parts[0], parts[1]
    raise SetupError(f"no PostgreSQL cluster on port 5432 in pg_lsclusters:\n{out}")


def pg_accepts() -> bool:
    import psycopg

    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def ensure_pg_running(version: str, cluster: str) -> bool:
    if pg_accepts():
        return True
    say("PostgreSQL is not answering: starting it")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"], timeout=120, check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pg_accepts():
            return True
        time.sleep(1)
    return False


def other_clients(own_db: str) -> list[tuple[str, int]]:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=5) as conn:
        return conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> %s "
            "AND pid <> pg_backend_pid() GROUP BY datname ORDER BY datname", (own_db,)).fetchall()


# ---- the drill ---------------------------------------------------------------------------------------------


class Drill:
    def __init__(self, topo: Topology, rng: random.Random):
        self.topo = topo
        self.rng = rng
        rows = topo.query(
            "SELECT f.name, f.id, d.id FROM fields f JOIN databases d ON d.id = f.database_id WHERE d.name = '顧客' "
            "AND f.name IN ('顧客コード', '連携ステータス')")
        self.keys = {name: str(field_id) for name, field_id, _ in rows}
        self.database_id = rows[0][2]
        ids = topo.ids()
        self.menu_id = ids["menus"][CUSTOMER_MENU]
        self.setting_id = ids["settings"][CUSTOMER_SETTING]
        self.expected = {row[0] for row in topo.query(
            "SELECT data->>%s FROM records WHERE database_id = %s", (self.keys["顧客コード"], self.database_id))}
        self.operator = Browser(topo.base)
        self.workers = ["worker-1", "worker-2"]

    def reset_records(self) -> None:
        """Every customer 未連携 again, so the menu selects all 100,000 (what the run's レコード更新 changed)."""
        self.topo.execute("UPDATE records SET data = jsonb_set(data, ARRAY[%s], '\"未連携\"'::jsonb) "
                          "WHERE database_id = %s", (self.keys["連携ステータス"], self.database_id))

    def last_import_id(self) -> int:
        return max((i["importId"] for i in self.topo.emulator_imports()), default=0)

    def status(self, run_id: int) -> str:
        """The run's status; "finishing" while a final status is set but レコード更新/mail still go on (the
        engine sets the status first and finished_at, with the end of the active key, last)."""
        row = self.topo.run_rows([run_id])[run_id]
        if row["status"] in FINAL_STATUSES and row["status"] != "interrupted" and not row["finished_at"]:
            return "finishing"
        return row["status"]

    def pick_call(self, run_id: int, low: int, high: int, timeout: float = 300) -> int:
        """A random call index in low..high, once the run has planned its calls (2..last-1 for small runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.topo.run_rows([run_id])[run_id]
            if row["call_count"]:
                return self.rng.randint(min(low, row["call_count"]), max(min(low, row["call_count"]),
                                                                         min(high, row["call_count"] - 1)))
            if row["status"] in FINAL_STATUSES:
                raise SetupError(f"run {run_id} ended before planning its calls: {row['error_message']}")
            time.sleep(0.05)
        raise SetupError(f"run {run_id} planned no calls within {timeout:.0f} s")

    def wait_for_call(self, run_id: int, index: int, timeout: float = 300,
                      states: tuple[str, ...] = ("posting", "accepted")) -> dict:
        """Poll the database (as a separate observer) until call `index` is being sent or polled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.topo.call_rows(run_id):
                if call["index"] == index and call["status"] in states:
                    return call
            if self.status(run_id) in FINAL_STATUSES:
                raise SetupError(f"run {run_id} ended before call {index} was reached")
            time.sleep(0.02)
        raise SetupError(f"call {index} of run {run_id} not reached within {timeout:.0f} s")

    def rq_workers(self) -> list:
        from redis import Redis
        from rq import Queue, Worker

        queue = Queue(self.topo.queue, connection=Redis.from_url(self.topo.env["REDIS_URL"]))
        return Worker.all(queue=queue)

    def wait_workers(self, count: int = 2, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.rq_workers()) >= count:
                return
            time.sleep(0.3)
        raise SetupError(f"fewer than {count} workers registered within {timeout:.0f} s")

    def busy_worker(self, run_id: int, timeout: float = 10) -> str:
        """The worker process running this run's job, from RQ's worker registry (a process tree does not tell:
        the worker that holds RQ's scheduler lock has a child process too)."""
        deadline = time.monotonic() + timeout
        by_pid = {self.topo.processes[name].pid: name for name in self.workers}
        while time.monotonic() < deadline:
            for worker in self.rq_workers():
                job_id = worker.get_current_job_id() or ""
                if job_id.endswith(f"-run-{run_id}") and worker.pid in by_pid:
                    return by_pid[worker.pid]
            time.sleep(0.05)
        raise SetupError(f"no worker is running the job of run {run_id}")

    def operator_until_final(self, run_id: int, timeline: list, timeout: float = 420, max_reruns: int = 3) -> dict:
        """What an operator does: reload the status page; when it shows 中断, read why and press 再実行."""
        deadline = time.monotonic() + timeout
        seen: dict = {"interrupted_pages": [], "reruns": 0, "page_errors": 0, "stuck": ""}
        queued_since = None
        while time.monotonic() < deadline:
            try:
                code, page = self.operator.run_page(run_id)
            except Exception as exc:  # noqa: BLE001  (PostgreSQL may be restarting: the operator reloads)
                code, page = 0, type(exc).__name__
            try:
                status = self.status(run_id)
            except Exception:  # noqa: BLE001
                status = "(database unreachable)"
            if code != 200:
                seen["page_errors"] += 1
            if not timeline or timeline[-1][1] != status:
                timeline.append((time.monotonic(), status, code))
            if status != "queued":
                queued_since = None
            if status == "interrupted" and code == 200:
                explained = "中断" in page and ("再実行" in page) and (INTERRUPTED_TEXT in page or CRASH_TEXT in page)
                reason = INTERRUPTED_TEXT if INTERRUPTED_TEXT in page else CRASH_TEXT if CRASH_TEXT in page else "?"
                seen["interrupted_pages"].append((explained, reason))
                if seen["reruns"] >= max_reruns:
                    break
                answer = self.operator.rerun(run_id)
                seen["reruns"] += 1
                timeline.append((time.monotonic(), f"再実行 pressed (HTTP {answer})", answer))
            elif status == "queued":
                # Two idle workers take a queued run within a second; a minute means nobody ever will.
                queued_since = queued_since or time.monotonic()
                if time.monotonic() - queued_since > 60:
                    seen["stuck"] = "待機中 for 60 s with 2 idle workers"
                    break
            elif status in FINAL_STATUSES:
                # The page read above may predate the end: read it again, as the operator would.
                code, page = self.operator.run_page(run_id)
                seen["final_page"] = page if code == 200 else ""
                break
            time.sleep(1)
        seen["status"] = self.status(run_id)
        return seen

    def received(self, baseline: int) -> dict:
        """What the emulator received after `baseline`: codes per import (from the stored CSVs) and totals."""
        imports = [i for i in self.topo.emulator_imports() if i["importId"] > baseline and i["kind"] == "customers"]
        codes: dict[int, list[str]] = {}
        totals = 0
        for item in imports:
            folder = self.topo.emulator_dir / "files" / str(item["importId"])
            codes[item["importId"]] = [c for path in sorted(folder.glob("*")) for c in csv_codes(path.read_bytes())]
            totals += self.topo.import_total(item["importId"])
        return {"imports": codes, "totals": totals}

    def verify(self, run_id: int, baseline: int, seen: dict) -> dict:
        got = self.received(baseline)
        counter = Counter(c for codes in got["imports"].values() for c in codes)
        calls = self.topo.call_rows(run_id)
        files_root = Path(self.topo.env["FILES_DIR"])
        unknown_calls = [c for c in calls if c["status"] == "needs_check"]
        unknown_codes: set[str] = set()
        for call in unknown_calls:
            for info in call["files"]:
                unknown_codes.update(csv_codes((files_root / info["path"]).read_bytes()))
        call_imports = {c["import_id"] for c in calls if c["import_id"]}
        orphans = [i for i in got["imports"] if i not in call_imports]  # accepted, but the answer never got stored
        row = self.topo.run_rows([run_id])[run_id]
        duplicates = {c: n for c, n in counter.items() if n > 1}
        unexpected = set(counter) - self.expected
        missing = self.expected - set(counter)
        unexplained = missing - unknown_codes
        page = seen.get("final_page", "")
        label = STATUS_LABELS.get(row["status"], row["status"])
        result = {
            "status": row["status"], "ok_count": row["ok_count"], "error_count": row["error_count"],
            "calls": [(c["index"], c["status"]) for c in calls], "imports": len(got["imports"]),
            "received_rows": sum(counter.values()), "state_totals": got["totals"], "distinct": len(counter),
            "duplicates": len(duplicates), "unexpected": len(unexpected), "missing": len(missing),
            "unexplained_missing": len(unexplained), "needs_check_calls": [c["index"] for c in unknown_calls],
            "needs_check_records": len(unknown_codes), "needs_check_received": len(unknown_codes & set(counter)),
            "orphan_imports": orphans,
            "page_explains_end": bool(page) and label in page and (row["status"] == "completed" or "取込履歴" in page),
        }
        result["passed"] = (
            not duplicates and not unexpected and not unexplained and row["status"] in FINAL_STATUSES
            and row["status"] != "interrupted" and result["received_rows"] == result["state_totals"]
            and (row["status"] == "completed") == (not unknown_calls)
            and row["ok_count"] == len(self.expected) - len(unknown_codes)
            and result["page_explains_end"]
            and all(explained for explained, _ in seen["interrupted_pages"])
        )
        return result

    def start_run(self, memo: str) -> tuple[int, int]:
        """Reset the records and start the run with the 実行 form; (run id, last emulator import before it)."""
        self.reset_records()
        baseline = self.last_import_id()
        run_id = self.operator.start_run(self.menu_id, self.setting_id, memo)
        return run_id, baseline

    def kill_round(self, number: int, in_post: bool = False) -> dict:
        """Random timing; with in_post, the kill follows the moment the call is persisted 送信中 (its POST)."""
        run_id, baseline = self.start_run(f"fault drill kill {number}")
        started = time.monotonic()
        target = self.pick_call(run_id, 2, 8)
        if in_post:
            self.wait_for_call(run_id, target, states=("posting",))
        else:
            self.wait_for_call(run_id, target)
            time.sleep(self.rng.uniform(0.0, 1.0))
        victim = self.busy_worker(run_id)
        killed_pids = self.topo.kill_tree(victim)
        killed = time.monotonic()
        at_kill = [(c["index"], c["status"]) for c in self.topo.call_rows(run_id)]
        say(f"round {number}: run {run_id}, SIGKILLed {victim} (pids {killed_pids}) at call {target} "
            f"({time.monotonic() - started:.1f} s in); calls then: {compact(at_kill)}")
        timeline: list = [(killed, "killed", 0)]
        seen = self.operator_until_final(run_id, timeline)
        result = self.verify(run_id, baseline, seen)
        first_interrupt = next((t for t, s, _ in timeline if s == "interrupted"), None)
        result.update(kind="kill", in_post=in_post, round=number, run_id=run_id, victim=victim, target=target, at_kill=at_kill,
                      seen=seen, interrupted_after=(first_interrupt - killed) if first_interrupt else None,
                      total_s=time.monotonic() - started, timeline=describe(timeline, killed))
        self.topo.start_worker(victim)  # the service manager restarts it
        self.wait_workers()
        return result

    def finish_kill_round(self) -> dict:
        """Extra (--kill-in-finish): SIGKILL the worker while the run shows 完了 but still applies レコード更新, then
        do what an operator does (reload, wait, press 実行 again); reports whether the integration can run again."""
        run_id, baseline = self.start_run("fault drill kill during レコード更新")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.status(run_id) not in ("finishing", *FINAL_STATUSES):
            time.sleep(0.02)
        state_at_kill = self.status(run_id)
        if state_at_kill != "finishing":
            return {"run_id": run_id, "state_at_kill": state_at_kill, "skipped": True}
        victim = self.busy_worker(run_id)
        self.topo.kill_tree(victim)
        say(f"extra round: run {run_id}, SIGKILLed {victim} while {state_at_kill}")
        time.sleep(STALE_SECONDS * 3)
        code, page = self.operator.run_page(run_id)
        row = self.topo.query("SELECT status, active_key, finished_at, records_updated FROM runs WHERE id = %s",
                              (run_id,))[0]
        status_key = self.keys["連携ステータス"]
        updated = self.topo.query("SELECT count(*) FROM records WHERE database_id = %s AND data->>%s = '連携済'",
                                  (self.database_id, status_key))[0][0]
        try:
            again = self.operator.start_run(self.menu_id, self.setting_id, "after the kill")
            blocked = ""
        except SetupError as exc:
            again, blocked = None, str(exc)
        self.topo.start_worker(victim)
        self.wait_workers()
        if again is None:
            # The only way out today: an administrator clears the key by SQL (so the next rounds can run).
            self.topo.execute("UPDATE runs SET active_key = NULL WHERE id = %s", (run_id,))
        return {"run_id": run_id, "state_at_kill": state_at_kill, "db": row, "page_status": code,
                "page_shows": "完了" if "完了" in page else "?", "updated": updated, "total": len(self.expected),
                "again": again, "blocked": blocked[:160], "baseline": baseline}

    def follow_up_run(self, records: int = 100, timeout: float = 90) -> dict:
        """After the restart: does a new run (100 records) still get done by the workers started before it?"""
        self.topo.execute(
            "UPDATE records SET data = jsonb_set(data, ARRAY[%s], '\"未連携\"'::jsonb) WHERE id IN "
            "(SELECT id FROM records WHERE database_id = %s ORDER BY id LIMIT %s)",
            (self.keys["連携ステータス"], self.database_id, records))
        try:
            run_id = self.operator.start_run(self.menu_id, self.setting_id, "after the PostgreSQL restart")
        except SetupError as exc:
            return {"run_id": None, "status": f"refused ({exc})"[:200], "waited_s": 0, "worker_errors": []}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.status(run_id) not in FINAL_STATUSES:
            time.sleep(1)
        failures = []
        for name in self.workers:
            log = (self.topo.tmp / f"{name}.log").read_text(errors="replace")
            failures += [f"{name}: AdminShutdown in _claim"] if "AdminShutdown" in log and "_claim" in log else []
        return {"run_id": run_id, "status": self.status(run_id), "waited_s": timeout, "worker_errors": failures}

    def pg_round(self, version: str, cluster: str) -> dict:
        run_id, baseline = self.start_run("fault drill PostgreSQL restart")
        started = time.monotonic()
        target = self.pick_call(run_id, 2, 6)
        self.wait_for_call(run_id, target)
        time.sleep(self.rng.uniform(0.0, 1.0))
        at_restart = [(c["index"], c["status"]) for c in self.topo.call_rows(run_id)]
        restart_at = time.monotonic()
        try:
            done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"],
                                  capture_output=True, text=True, timeout=120, check=False)
            restart_s = time.monotonic() - restart_at
            say(f"PostgreSQL restart: exit {done.returncode} in {restart_s:.1f} s at call {target}; "
                f"calls then: {compact(at_restart)}")
        finally:
            if not ensure_pg_running(version, cluster):
                raise SetupError("PostgreSQL did not come back")
        timeline: list = [(restart_at, "PostgreSQL restart", 0)]
        seen = self.operator_until_final(run_id, timeline)
        result = self.verify(run_id, baseline, seen)
        result["follow_up"] = self.follow_up_run()
        result.update(kind="pg", run_id=run_id, target=target, at_kill=at_restart, seen=seen, restart_rc=done.returncode,
                      restart_s=restart_s, total_s=time.monotonic() - started, timeline=describe(timeline, restart_at))
        return result


def compact(calls: list[tuple[int, str]]) -> str:
    short = {"planned": "P", "posting": "S!", "accepted": "A", "complete": "C", "needs_check": "?", "failed": "F",
             "row_errors": "R"}
    return " ".join(f"{i}{short.get(s, s)}" for i, s in calls)


def describe(timeline: list, origin: float) -> str:
    return " -> ".join(f"{STATUS_LABELS.get(s, s)} @{t - origin:+.1f}s" for t, s, _ in timeline)


def print_result(r: dict) -> None:
    aim = " (aimed at its POST)" if r.get("in_post") else ""
    head = (f"Kill round {r['round']}: SIGKILL {r['victim']} at call {r['target']}{aim}" if r["kind"] == "kill"
            else f"PostgreSQL restart at call {r['target']} ({r['restart_s']:.1f} s, exit {r['restart_rc']})")
    print(f"\n{head}: run {r['run_id']} -> {STATUS_LABELS.get(r['status'], r['status'])} "
          f"{'PASS' if r['passed'] else 'FAIL'}")
    print(f"  calls at the fault   {compact(r['at_kill'])}   (P 未送信, S! 送信中 = POST in flight, A 取込中, C 完了)")
    print(f"  timeline             {r['timeline']}")
    pages = r["seen"]["interrupted_pages"]
    if pages:
        print(f"  status page          showed 中断 {len(pages)}x, explained: {all(e for e, _ in pages)} "
              f"(「{pages[0][1]}…」), 再実行 pressed {r['seen']['reruns']}x")
    else:
        print("  status page          never showed 中断 (the run ended on its own)")
    if r["seen"]["stuck"]:
        print(f"  STUCK                {r['seen']['stuck']}")
    if r["seen"]["page_errors"]:
        print(f"  page reloads failed  {r['seen']['page_errors']} (while the fault lasted)")
    print(f"  calls at the end     {compact(r['calls'])}; ok {r['ok_count']:,}, errors {r['error_count']:,}")
    print(f"  emulator received    {r['imports']} imports, {r['received_rows']:,} rows (state API totals "
          f"{r['state_totals']:,}), {r['distinct']:,} distinct 顧客コード")
    print(f"  exactly once         duplicates {r['duplicates']}, unexpected {r['unexpected']}, missing "
          f"{r['missing']:,} (unexplained {r['unexplained_missing']})")
    if r["needs_check_calls"]:
        print(f"  要確認               call(s) {r['needs_check_calls']}: {r['needs_check_records']:,} records not resent, "
              f"not counted; 楽楽明細 did receive {r['needs_check_received']:,} of them "
              f"(imports without a stored answer: {r['orphan_imports']})")
    print(f"  end explained        {r['page_explains_end']}; total {r['total_s']:.0f} s")
    if "follow_up" in r:
        f = r["follow_up"]
        print(f"  next run afterwards  run {f['run_id']} (100 records): {STATUS_LABELS.get(f['status'], f['status'])}"
              f"{' after ' + str(f['waited_s']) + ' s: STUCK' if f['status'] not in FINAL_STATUSES else ''}"
              f"{'; worker logs: ' + ', '.join(f['worker_errors']) if f['worker_errors'] else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="worker kill rounds (default 3)")
    parser.add_argument("--post-rounds", type=int, default=1,
                        help="kill rounds aimed at a POST in flight (the 要確認 path; default 1)")
    parser.add_argument("--skip-pg-restart", action="store_true")
    parser.add_argument("--force-pg-restart", action="store_true",
                        help="restart PostgreSQL even when other databases have clients (they lose their connections)")
    parser.add_argument("--kill-in-finish", action="store_true",
                        help="extra round: kill the worker during レコード更新 after the calls (reports, does not judge)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the fault timing (default: random)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)

    version, cluster = pg_cluster()
    topo = Topology("fault_drill", extra_env={"RUN_STALE_SECONDS": str(STALE_SECONDS), "RUN_POLL_MAX_INTERVAL": "2"})
    say(f"seed {seed}; database {topo.db_name}; web {topo.base}; logs in {topo.tmp}")
    results = []
    try:
        topo.create_database()
        say(f"migrating and seeding {args.customers:,} customers …")
        seed_s = topo.prepare(args.customers, 10)
        topo.start_emulator()
        topo.start_web()
        for name in ("worker-1", "worker-2"):
            topo.start_worker(name)
        drill = Drill(topo, rng)
        drill.wait_workers()
        say(f"{len(drill.expected):,} customers seeded in {seed_s:.0f} s")
        for number in range(1, args.rounds + args.post_rounds + 1):
            results.append(drill.kill_round(number, in_post=number > args.rounds))
            print_result(results[-1])
        # Its stuck key is cleared by SQL afterwards, so the PostgreSQL round can run.
        extra = drill.finish_kill_round() if args.kill_in_finish else None
        if extra and extra.get("skipped"):
            print(f"\nExtra round skipped: run {extra['run_id']} was {extra['state_at_kill']}, never in レコード更新")
        elif extra:
            print(f"\nExtra round: SIGKILL during レコード更新 (run {extra['run_id']}, status then "
                  f"{STATUS_LABELS.get(extra['state_at_kill'], extra['state_at_kill'])})")
            print(f"  {STALE_SECONDS * 3} s later: status {extra['db'][0]}, active_key {extra['db'][1]!r}, finished_at "
                  f"{extra['db'][2]}, records_updated {extra['db'][3]}; page HTTP {extra['page_status']} shows "
                  f"{extra['page_shows']}; 連携済 records {extra['updated']:,}/{extra['total']:,}")
            print(f"  実行 again: {'run ' + str(extra['again']) + ' started' if extra['again'] else 'REFUSED: ' + extra['blocked']}")
            if extra["again"]:
                seen = drill.operator_until_final(extra["again"], [])
                print(f"  that run ended {seen['status']}")
            else:
                print("  (cleared by SQL `UPDATE runs SET active_key = NULL` so the drill can go on)")
        pg_skipped = ""
        if not args.skip_pg_restart:
            others = other_clients(topo.db_name)
            if others and not args.force_pg_restart:
                pg_skipped = f"other clients are connected ({others}); pass --force-pg-restart"
            else:
                results.append(drill.pg_round(version, cluster))
                print_result(results[-1])
        else:
            pg_skipped = "--skip-pg-restart"
    except SetupError as exc:
        say(f"SET-UP FAILED: {exc}")
        args.keep = True
        return 2
    finally:
        try:
            if not ensure_pg_running(version, cluster):
                say("WARNING: PostgreSQL is not running")
        finally:
            topo.cleanup(keep=args.keep)

    kills = [r for r in results if r["kind"] == "kill" and not r["in_post"]]
    aimed = [r for r in results if r["kind"] == "kill" and r["in_post"]]
    print("\n" + "=" * 96)
    print("Fault drill (issue 9)")
    for line in machine_lines():
        print("  " + line)
    print(f"  set-up          {args.customers:,} customers -> calls of <= 10,000; 2 x worker.py, gunicorn x2, emulator "
          f"(import delay 2 s); RUN_STALE_SECONDS={STALE_SECONDS}; seed {seed}")
    hit_post = sum(1 for r in kills if any(s == "posting" for _, s in r["at_kill"]))
    needs_check = sum(1 for r in kills if r["needs_check_calls"])
    print(f"Worker SIGKILL: {sum(r['passed'] for r in kills)}/{len(kills)} rounds passed; the kill hit a POST in "
          f"{hit_post}/{len(kills)} (要確認 in {needs_check}); 中断 shown after "
          + ", ".join(f"{r['interrupted_after']:.1f} s" if r["interrupted_after"] is not None else "-" for r in kills))
    if aimed:
        print(f"Worker SIGKILL aimed at a POST: {sum(r['passed'] for r in aimed)}/{len(aimed)} rounds passed; 要確認 in "
              f"{sum(1 for r in aimed if r['needs_check_calls'])}; 楽楽明細 had received the 要確認 call in "
              f"{sum(1 for r in aimed if r['needs_check_received'])}")
    pg = [r for r in results if r["kind"] == "pg"]
    if pg:
        follow = pg[0]["follow_up"]
        print(f"PostgreSQL restart: the run in flight {'PASS' if pg[0]['passed'] else 'FAIL'} -> "
              f"{STATUS_LABELS.get(pg[0]['status'], pg[0]['status'])}; the next run "
              f"{'PASS' if follow['status'] == 'completed' else 'FAIL'} -> "
              f"{STATUS_LABELS.get(follow['status'], follow['status'])}")
    else:
        print(f"PostgreSQL restart: SKIPPED ({pg_skipped})")
    passed = all(r["passed"] for r in results) and all(r["follow_up"]["status"] == "completed" for r in pg) and len(kills) + len(aimed) == args.rounds + args.post_rounds and (pg or args.skip_pg_restart)
    print(f"Result: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
