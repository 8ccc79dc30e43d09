"""Benchmark of the 楽楽明細 client against the emulator on loopback.

    .venv/bin/python bench/bench_meisai_client.py [--rows 10000] [--repeat 5]

Starts the emulator as its own process (as in production, client and server do not share a GIL) with an
import delay of 0, then measures, median of ``--repeat`` runs, for a ~3 MB / 10,000-row customer CSV:

- building the cp932 CSV (client),
- a plain ``requests`` POST of the same bytes to a no-op endpoint (the raw transfer yardstick),
- the client's import call against the same no-op endpoint (multipart, headers, exchange log, parsing):
  the client's overhead over the raw figure, target < 50 %,
- the client's import call against the real endpoint, and the emulator's ingest time from accepted to
  ``complete`` (target < 2 s), and the whole build + POST + poll to ``complete``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from webapp.meisai import (  # noqa: E402  (after the path set-up, so the script runs from anywhere)
    CustomerImportParams,
    MeisaiClient,
    build_csv,
    contract,
)

TOKEN = "bench-token-0123456789abcdef"
HEADER = list(contract.DEFAULT_CUSTOMER_IMPORT_FORMATS[1][1])


def rows_for(count: int, prefix: str) -> list[list[str]]:
    """Realistic Japanese customer rows of about 300 bytes in cp932, so 10,000 rows come close to 3 MB."""
    return [
        [
            f"{prefix}{n:06d}",
            f"株式会社サンプル商事 第{n}営業所",
            f"{100 + n % 900:03d}-{n % 10000:04d}",
            "東京都千代田区丸の内一丁目1番1号",
            f"楽楽明細ビルディング{n % 40 + 1}階 {n % 20 + 1}号室 総合受付気付",
            "株式会社サンプル商事ホールディングス",
            "経理財務本部 請求管理部 請求第二課",
            f"請求 担当者{n % 500}",
            f"billing-{n:06d}@example.co.jp,accounts-{n:06d}@example.co.jp",
        ]
        for n in range(count)
    ]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meisai_emulator",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
            "--import-delay",
            "0",
        ],
        cwd=REPO,
        env={**os.environ, "MEISAI_DEMO_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(root + "_health", timeout=1).ok:
                return process, root
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the emulator did not start")


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=contract.MAX_ROWS_PER_FILE)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        process, root = start_emulator(data_dir)
        try:
            figures = run(root, args.rows, args.repeat)
        finally:
            process.terminate()
            process.wait(timeout=10)
    report(figures, args)
    return 0 if figures["overhead"] < 0.5 and figures["ingest"] < 2000 else 1


def run(root: str, rows: int, repeat: int) -> dict:
    raw_session = requests.Session()
    logged = []
    noop_client = MeisaiClient(
        f"{root}_noop/bench/", TOKEN, allow_insecure_loopback=True, log_exchange=logged.append
    )
    client = MeisaiClient(f"{root}demo/", TOKEN, allow_insecure_loopback=True, log_exchange=logged.append)
    sample = build_csv(HEADER, rows_for(rows, "W"))
    # Warm up connections and code paths once, outside the measurements.
    raw_session.post(f"{root}_noop/raw", data=sample, timeout=60)
    noop_client.import_customers(sample, "顧客.csv")

    build, raw, client_noop, client_post, ingest, total = [], [], [], [], [], []
    for run_index in range(repeat):
        data = rows_for(rows, f"B{run_index}-")  # new codes every run: every row is an insert
        ms, csv_bytes = timed(lambda data=data: build_csv(HEADER, data))
        build.append(ms)
        raw.append(
            timed(
                lambda b=csv_bytes: raw_session.post(
                    f"{root}_noop/raw", data=b, timeout=60
                ).raise_for_status()
            )[0]
        )
        client_noop.append(timed(lambda b=csv_bytes: noop_client.import_customers(b, "顧客.csv"))[0])

        started = time.perf_counter()
        ms, accepted = timed(
            lambda b=csv_bytes: client.import_customers(b, "顧客.csv", CustomerImportParams())
        )
        client_post.append(ms)
        state = client.wait_for_import(
            "customers", accepted.import_id, first_interval=0.02, max_interval=0.05
        )
        total.append(build[-1] + (time.perf_counter() - started) * 1000)
        if state.status != "complete" or state.succeeded != rows:
            raise SystemExit(f"import {accepted.import_id} ended {state.status} ({state.succeeded}/{rows})")
        ingest.append(_server_ingest_ms(root, accepted.import_id))

    median = statistics.median
    return {
        "bytes": len(sample),
        "build": median(build),
        "raw": median(raw),
        "client_noop": median(client_noop),
        "client_post": median(client_post),
        "ingest": median(ingest),
        "total": median(total),
        "overhead": median(client_noop) / median(raw) - 1,
    }


def _server_ingest_ms(root: str, import_id: int) -> float:
    """Accepted → processed, from the emulator's own clock (its import delay is 0 here)."""
    imports = requests.get(f"{root}_admin/tenants/demo/imports", timeout=10).json()
    record = next(i for i in imports if i["importId"] == import_id)
    received = datetime.fromisoformat(record["receivedAt"].rstrip("Z"))
    processed = datetime.fromisoformat(record["processedAt"].rstrip("Z"))
    return (processed - received).total_seconds() * 1000


def report(f: dict, args) -> None:
    def line(label: str, ms: float, note: str = "") -> None:
        print(f"  {label:<46} {ms:8.1f} ms  {note}")

    print(
        f"楽楽明細 client benchmark: {args.rows:,} rows, {f['bytes']:,} bytes cp932 CSV, "
        f"median of {args.repeat}, loopback, emulator in its own process"
    )
    print(
        f"  machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform(terse=True)}"
    )
    line("build CSV (client, cp932, quoted, CRLF)", f["build"])
    line("raw POST of the same bytes to a no-op", f["raw"], "raw transfer")
    verdict = "OK" if f["overhead"] < 0.5 else "OVER TARGET"
    line(
        "client import call to the same no-op",
        f["client_noop"],
        f"client overhead {f['overhead'] * 100:+.0f}% over raw (target < 50%: {verdict})",
    )
    line(
        "client import call to the real endpoint",
        f["client_post"],
        "includes the emulator's cp932/CSV checks",
    )
    verdict = "OK" if f["ingest"] < 2000 else "OVER TARGET"
    line("emulator ingest, accepted → complete", f["ingest"], f"(target < 2000 ms: {verdict})")
    line("total: build + POST + poll to complete", f["total"])


if __name__ == "__main__":
    sys.exit(main())
