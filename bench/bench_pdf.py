"""Benchmark: 自動生成ファイル PDF generation rate (請求書 template, 10 明細 lines each).

Requirement: PDF generation rate in documents per second, 10 detail lines each; target >= 100 PDFs/s on the
2-core reference machine, with the Japanese font subset embedded in every PDF.

What it measures:
  1. render   build_content + render_pdf in one process, font registered once (the first document, which
              pays for reading the font file, is reported separately);
  2. stored   the bulk job's body (operations.generate_missing) on a fresh database with --records records:
              content, fingerprint, render, atomic file write under FILES_DIR and the guarded store of the
              value in batches — what 「未生成・古いPDFをまとめて作成」 and the run engine's ensure_pdf cost;
  3. current  the same job again when every PDF is current: the fingerprint check alone (what ensure_pdf
              costs a run for records whose PDF is already there).

Run:  .venv/bin/python bench/bench_pdf.py
      .venv/bin/python bench/bench_pdf.py --records 1000 --database-url postgresql://postgres@127.0.0.1:5432/bench_pdf
(the PostgreSQL database is created and dropped by this script). Exit status 0 whether or not the target is
met (it reports, it does not judge); 2 on a setup error.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_PER_S = 100.0
LINES = 10
ITEMS = [("コピー用紙 A4 500枚", 550, 10), ("トナーカートリッジ", 12800, 10), ("保守サービス(月額)", 30000, 10),
         ("お茶 500ml×24本", 2880, 8), ("コーヒー豆 1kg", 3200, 8), ("ボールペン 10本入", 980, 10),
         ("配送料", 1500, 10), ("設置作業費", 25000, 10), ("弁当(会議用)", 1080, 8), ("システム利用料", 50000, 10)]
COMPANIES = ["株式会社青葉商事", "株式会社富士工業", "有限会社桜物産", "みなとシステム株式会社", "株式会社北斗建設"]


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _invoice(rng: random.Random, number: int, keys: dict) -> tuple[dict, list[dict]]:
    details = []
    for _ in range(LINES):
        item, price, rate = rng.choice(ITEMS)
        quantity = rng.randint(1, 20)
        details.append({keys["品名"]: item, keys["数量"]: quantity, keys["単価"]: price,
                        keys["金額"]: price * quantity, keys["税率"]: f"{rate}%"})
    data = {keys["請求番号"]: f"INV-2026-{number:06d}", keys["取引先"]: rng.choice(COMPANIES),
            keys["請求日"]: "2026-04-30", keys["支払期限"]: "2026-05-31", keys["件名"]: "4月分 ご請求",
            keys["備考"]: "いつもお引き立ていただき、ありがとうございます。"}
    return data, details


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", type=int, default=500, help="documents rendered in the render-only pass")
    parser.add_argument("--records", type=int, default=500, help="records in the stored pass")
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    from webapp import create_app
    from webapp.databases.models import Record
    from webapp.databases.operations import FieldSpec, add_field, bulk_insert_records, create_database
    from webapp.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    database_url = args.database_url
    if database_url:
        name = database_url.rsplit("/", 1)[1]
        _pg_admin(database_url, f'DROP DATABASE IF EXISTS "{name}"')
        _pg_admin(database_url, f'CREATE DATABASE "{name}"')
        sqlalchemy_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    else:
        sqlalchemy_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": sqlalchemy_url, "SECRET_KEY": "bench", "APP_ENV": "bench",
                      "FILES_DIR": str(workdir / "files"),
                      "TESTING": True}, instance_path=str(workdir / "instance"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"database: {'PostgreSQL' if database_url else 'SQLite'}")
    try:
        with app.app_context():
            db.create_all()
            database = create_database("請求書(ベンチ)", "")
            fields = {}
            for spec in [FieldSpec("請求番号", "text"), FieldSpec("取引先", "text"), FieldSpec("請求日", "date"),
                         FieldSpec("支払期限", "date"), FieldSpec("件名", "text"), FieldSpec("備考", "textarea"),
                         FieldSpec("請求書PDF", "autofile", settings={"template": "invoice"}),
                         FieldSpec("品名", "text", placement="detail"), FieldSpec("数量", "number", placement="detail"),
                         FieldSpec("単価", "number", placement="detail"), FieldSpec("金額", "number", placement="detail"),
                         FieldSpec("税率", "select", placement="detail", options=["10%", "8%"])]:
                fields[spec.name] = add_field(database, spec)
            db.session.commit()
            keys = {name: f.key for name, f in fields.items()}
            target = fields["請求書PDF"]
            rng = random.Random(7)

            # 1. render only
            from webapp.documents.operations import Generator, generate_missing
            from webapp.documents.render import render_pdf

            started = time.perf_counter()
            generator = Generator(target)
            data, details = _invoice(rng, 0, keys)
            content, _ = generator.content(data, details, 1)
            first_pdf = render_pdf(generator.template, content)
            first_ms = (time.perf_counter() - started) * 1000
            samples, sizes = [], []
            invoices = [_invoice(rng, i, keys) for i in range(1, args.render + 1)]
            started = time.perf_counter()
            for index, (data, details) in enumerate(invoices, start=1):
                t0 = time.perf_counter()
                content, _ = generator.content(data, details, index)
                sizes.append(len(render_pdf(generator.template, content)))
                samples.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - started
            render_rate = args.render / elapsed
            samples.sort()
            print(f"first document (reads the font file): {first_ms:.0f} ms, {len(first_pdf) / 1024:.1f} KiB")
            print(f"render:  {args.render} documents in {elapsed:.2f} s = {render_rate:.0f} PDFs/s "
                  f"(p50 {statistics.median(samples):.1f} ms, p95 {samples[int(len(samples) * .95)]:.1f} ms, "
                  f"avg {statistics.mean(sizes) / 1024:.1f} KiB, font subset embedded)")

            # 2. stored: the bulk job on records inserted without PDFs
            bulk_insert_records(database, [_invoice(rng, i, keys) for i in range(1, args.records + 1)])
            db.session.commit()
            started = time.perf_counter()
            result = generate_missing(target.id)
            elapsed = time.perf_counter() - started
            stored_rate = result.generated / elapsed
            files = list((workdir / "files").rglob("*.pdf"))
            print(f"stored:  {result.generated} of {args.records} records in {elapsed:.2f} s = {stored_rate:.0f} PDFs/s "
                  f"(content + render + file + guarded store; {len(files)} files, "
                  f"{sum(f.stat().st_size for f in files) / 1024 / 1024:.1f} MiB)")

            # 3. current: nothing to do but check fingerprints
            started = time.perf_counter()
            again = generate_missing(target.id)
            elapsed = time.perf_counter() - started
            print(f"current: {again.current} records checked in {elapsed:.2f} s = {again.current / elapsed:.0f} records/s "
                  f"(regenerated {again.generated})")
            assert db.session.query(Record).count() == args.records

        verdict = "met" if min(render_rate, stored_rate) >= TARGET_PER_S else "NOT met"
        print(f"target >= {TARGET_PER_S:.0f} PDFs/s (10 lines each): {verdict} "
              f"(render {render_rate:.0f}/s, stored {stored_rate:.0f}/s)")
        return 0
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if database_url:
            _pg_admin(database_url, f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}"')
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # a setup problem (no font, no database …): say it, exit 2
        print(f"setup error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
