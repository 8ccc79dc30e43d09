"""Small real servers on loopback for the token-safety tests: one that records what reaches it, one that
redirects, a bare TCP listener that only records bytes, and one that answers as slowly (or as long) as told."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUCCESS = json.dumps({"status": "success", "customers": []}).encode()


class _Server:
    def __init__(self, host: str, handler) -> None:
        self.httpd = ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class RecordingServer(_Server):
    """Answers every request with a 楽楽明細 success and records method, path, headers and body."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []

        class Handler(_Quiet):
            def _handle(self):
                body = self._drain()
                self.server.owner.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                self._answer(200, SUCCESS)

            do_GET = do_POST = do_DELETE = _handle

        super().__init__(host, Handler)


REDIRECT_BODY = "リダイレクト先のページ REDIRECT-BODY-MARKER"
REDIRECT_MESSAGE = "楽楽明細のURLから別の場所へ転送されました。URLを確認してください。"


class RedirectServer(_Server):
    """Answers every request with ``status`` and ``Location: location + path`` (and a body to recognise)."""

    def __init__(self, status: int, location: str, host: str = "127.0.0.1") -> None:
        self.hits = 0

        class Handler(_Quiet):
            def _handle(self):
                self._drain()
                self.server.owner.hits += 1
                target = location.rstrip("/") + self.path
                self._answer(status, REDIRECT_BODY.encode(), {"Location": target})

            do_GET = do_POST = do_DELETE = _handle

        super().__init__(host, Handler)


class _TcpServer:
    """Accepts connections on a free loopback port in a thread and hands each to ``_handle``."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self._stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stopped:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopped = True
        self.thread.join(timeout=5)
        self.sock.close()


class RawListener(_TcpServer):
    """A bare TCP listener: accepts connections and records the bytes each one sent until it closed.

    With ``reply`` it sends those bytes once something arrived, then closes (e.g. to end a TLS handshake).
    """

    def __init__(self, host: str = "127.0.0.1", reply: bytes | None = None) -> None:
        self.reply = reply
        self.received: list[bytes] = []
        self._changed = threading.Condition()
        super().__init__(host)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
                    if self.reply is not None:
                        conn.sendall(self.reply)
                        break
            except OSError:
                pass
        with self._changed:
            self.received.append(data)
            self._changed.notify_all()

    def wait_for_connection(self, timeout: float = 10) -> bool:
        """True once a connection was accepted and ended (its bytes are in ``received``)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.received, timeout)

    def connections_so_far(self) -> list[bytes]:
        """What every connection made until now sent, without waiting for one that may never come: a probe
        connection of our own is accepted after all earlier ones (the backlog is first in, first out)."""
        with socket.create_connection((self.host, self.port)) as probe:
            probe.sendall(b"PROBE")
        with self._changed:
            self._changed.wait_for(lambda: b"PROBE" in self.received, 10)
            return self.received[: self.received.index(b"PROBE")]


class ScriptedServer(_TcpServer):
    """A raw HTTP server: for each connection, reads the request head (with ``tls_hello``: the first bytes,
    a TLS ClientHello) and then runs ``script()``, whose items are bytes to send or float seconds to pause.

    ``sent`` counts the bytes the scripts managed to write (a client that stops reading ends a script).
    """

    def __init__(self, script, host: str = "127.0.0.1", tls_hello: bool = False) -> None:
        self.script = script
        self.tls_hello = tls_hello
        self.sent = 0
        self.closed = threading.Event()
        super().__init__(host)

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while not (head if self.tls_hello else b"\r\n\r\n" in head):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                for piece in self.script():
                    if self._stopped:
                        break
                    if isinstance(piece, float):
                        time.sleep(piece)  # the peer's own slowness is what these tests are about, not a wait
                        continue
                    conn.sendall(piece)
                    self.sent += len(piece)
            except OSError:
                pass  # the client hung up: what the test wants
            finally:
                self.closed.set()


def trickling_body():
    """200 with headers at once, then one byte of body every 50 ms, for ever."""
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"
    while True:
        yield 0.05
        yield b" "


def trickling_headers():
    """A status line, then one header line every 50 ms, for ever: the head never ends."""
    yield b"HTTP/1.1 200 OK\r\n"
    number = 0
    while True:
        yield 0.05
        number += 1
        yield f"X-Slow-{number % 50}: x\r\n".encode()


def trickling_tls_handshake():
    """The start of a 16 KiB TLS handshake record, then one byte of it every 50 ms, for ever."""
    yield b"\x16\x03\x03\x40\x00"
    while True:
        yield 0.05
        yield b"\x00"


def endless_body():
    """200 with no length, then body bytes as fast as the client takes them, for ever."""
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    block = b"{" + b" " * 65535
    while True:
        yield block


def huge_declared_body():
    """200 declaring 10 MiB (and sending them slowly): refused on the declaration alone."""
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{"
    while True:
        yield 0.05
        yield b" "


class Resolver:
    """socket.getaddrinfo for one made-up host name: each lookup answers the next address of ``answers``."""

    def __init__(self, monkeypatch, host: str, answers: list[str]):
        self.host, self.answers, self.calls = host, list(answers), 0
        real = socket.getaddrinfo

        def getaddrinfo(name, port, *args, **kwargs):
            if name != host:
                return real(name, port, *args, **kwargs)
            address = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
