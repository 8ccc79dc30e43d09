"""Helpers shared by the 楽楽明細 tests: the emulator in a thread, test data in the contract's formats."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests
from helpers import free_port
from werkzeug.serving import make_server

from meisai_emulator import create_app
from webapp.meisai import MeisaiClient, RetryPolicy, build_csv, contract

TOKEN = "test-token-0123456789abcdef"
ACCOUNT = "demo"
IMPORT_DELAY = 0.2
# Short waits so that retry tests take a fraction of a second; the shape of the policy is the product's.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2, total_time=5.0)
CUSTOMER_HEADER = list(contract.DEFAULT_CUSTOMER_IMPORT_FORMATS[1][1])
REPORT_HEADER = list(contract.DEFAULT_REPORT_COLUMNS)


@dataclass
class EmulatorServer:
    root_url: str
    account: str
    token: str
    data_dir: Path
    app: object = field(repr=False)
    exchanges: list = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}{self.account}/"

    def client(self, token: str | None = None, **kwargs) -> MeisaiClient:
        """A product client on this emulator; every exchange is appended to ``self.exchanges``."""
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("log_exchange", self.exchanges.append)
        return MeisaiClient(self.base_url, token or self.token, allow_insecure_loopback=True, **kwargs)

    def admin(self, method: str, path: str, json=None):
        response = requests.request(method, f"{self.root_url}_admin/{path}", json=json, timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    def set_faults(self, **knobs) -> dict:
        return self.admin("POST", f"tenants/{self.account}/faults", knobs)

    def faults(self) -> dict:
        """The knobs as they stand (``next_count`` falls as requests spend the count-based knob)."""
        return self.admin("GET", f"tenants/{self.account}/faults")

    def reset_faults(self) -> dict:
        return self.admin("POST", f"tenants/{self.account}/faults", {"reset": True})

    def documents(self) -> list[dict]:
        return self.admin("GET", f"tenants/{self.account}/documents")

    def current_documents(self) -> dict[str, dict]:
        return {d["documentNo"]: d for d in self.documents() if d["replacedAt"] is None}

    def imports(self) -> list[dict]:
        return self.admin("GET", f"tenants/{self.account}/imports")

    def set_web_status(self, code: str, status: str) -> None:
        self.admin("POST", f"tenants/{self.account}/customers/{code}/web-status", {"status": status})


def customer_rows(count: int, start: int = 1, prefix: str = "C") -> list[list[str]]:
    return [
        [
            f"{prefix}{n:05d}",
            f"顧客{n}",
            "100-0001",
            "東京都千代田区千代田1-1",
            "楽楽ビル3階",
            "株式会社サンプル",
            "経理部",
            "請求 太郎",
            f"bill{n}@example.com",
        ]
        for n in range(start, start + count)
    ]


def customer_csv(rows: list[list[str]]) -> bytes:
    return build_csv(CUSTOMER_HEADER, rows)


def report_row(code: str, no: str, item: str = "作業費", amount: int = 10000, **overrides) -> list[str]:
    values = {
        "顧客コード": code,
        "帳票No": no,
        "取引年月日": "2026/11/20",
        "取引金額": str(amount),
        "取引先": "株式会社サンプル",
        "件名": "11月分ご請求",
        "品名": item,
        "数量": "1",
        "単価": str(amount),
        "金額": str(amount),
        **overrides,
    }
    return [values[column] for column in REPORT_HEADER]


def report_csv(rows: list[list[str]]) -> bytes:
    return build_csv(REPORT_HEADER, rows)


def minimal_pdf(text: str = "invoice") -> bytes:
    """A small valid one-page PDF (correct xref offsets), enough for a browser to open."""
    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def start_emulator(data_dir: Path, **app_kwargs):
    app_kwargs.setdefault("import_delay", IMPORT_DELAY)
    app = create_app(data_dir, **app_kwargs)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        app.extensions["meisai_emulator"].close()

    return app, f"http://127.0.0.1:{port}/", stop
