"""Where the client sends the API token, over real local servers: never along a redirect, never to an internal
address in production (checked on the connected socket, not on an earlier lookup), and never for longer or
for more bytes than an answer may take."""

from __future__ import annotations

import time

import pytest
from local_servers import (
    REDIRECT_BODY,
    REDIRECT_MESSAGE,
    RawListener,
    RecordingServer,
    RedirectServer,
    Resolver,
    ScriptedServer,
    endless_body,
    huge_declared_body,
    trickling_body,
    trickling_headers,
    trickling_tls_handshake,
)
from meisai_testlib import FAST_RETRY, customer_csv, customer_rows

from webapp.meisai import (
    CustomerImportParams,
    DestinationPolicy,
    MeisaiClient,
    MeisaiConnectionError,
    MeisaiDestinationError,
    MeisaiRedirectError,
    MeisaiResponseTooLarge,
)
from webapp.meisai.client import MAX_RESPONSE_BYTES, NO_RETRY
from webapp.meisai.transport import blocked_address, check_destination

TOKEN = "tok-REDIRECT-SAFE-0123456789abcdef"


@pytest.fixture
def target():
    """Where a redirect points: it records anything that reaches it."""
    server = RecordingServer()
    yield server
    server.stop()


def dev_client(root: str, **kwargs) -> MeisaiClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return MeisaiClient(f"{root}demo/", TOKEN, allow_insecure_loopback=True, **kwargs)


# --- 1. redirects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("elsewhere", ["other port", "other host"])
def test_a_redirect_is_an_error_and_the_token_never_reaches_its_target(status, elsewhere):
    # 127.0.0.2 is another host on the loopback network (Linux answers the whole 127/8).
    target = RecordingServer("127.0.0.1" if elsewhere == "other port" else "127.0.0.2")
    redirect = RedirectServer(status, f"{target.root}demo/")
    exchanges = []
    try:
        client = dev_client(redirect.root, log_exchange=exchanges.append)
        with pytest.raises(MeisaiRedirectError) as raised:
            client.search_customers("x")
        with pytest.raises(MeisaiRedirectError):
            client.import_customers(customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams())
    finally:
        redirect.stop()
        target.stop()
    assert raised.value.user_message == REDIRECT_MESSAGE
    assert raised.value.http_status == status
    assert not raised.value.retryable and redirect.hits == 2  # asked once each, never again
    assert target.requests == []
    # The redirect's own page is not kept for the run history.
    assert [(x.http_status, x.response_text) for x in exchanges] == [(status, None), (status, None)]
    assert REDIRECT_BODY not in str(exchanges)


def test_connection_test_reports_a_redirect_without_following_it(target):
    redirect = RedirectServer(302, f"{target.root}demo/")
    try:
        check = dev_client(redirect.root).test_connection()
    finally:
        redirect.stop()
    assert (check.ok, check.message) == (False, REDIRECT_MESSAGE)
    assert target.requests == []


# --- 2. addresses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.1", "fc00::1", "fd12:3456::1",  # private
    "169.254.169.254", "fe80::1", "fe80::1%2",  # link-local (cloud metadata)
    "224.0.0.1", "239.255.255.250", "ff02::1",  # multicast
    "240.0.0.1", "0.0.0.0", "::", "100.64.0.1", "192.0.2.10",  # reserved, unspecified, shared, documentation
    "::ffff:10.0.0.1", "::ffff:127.0.0.1",  # IPv4-mapped
])
def test_internal_addresses_are_refused(address):
    assert blocked_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2001:4860:4860::8888",
                                     "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address):
    assert not blocked_address(address)


@pytest.fixture
def listener():
    server = RawListener()
    yield server
    server.stop()


def test_a_dns_answer_that_changes_after_the_check_cannot_take_the_token_inside(monkeypatch, listener):
    """The first lookup (the check) says a public address, the next (the connection) says loopback."""
    resolver = Resolver(monkeypatch, "meisai-rebind.example", ["93.184.216.34", "127.0.0.1"])
    client = MeisaiClient(f"https://meisai-rebind.example:{listener.port}/demo/", TOKEN, retry=FAST_RETRY)
    check = client.test_connection()
    assert resolver.calls == 2  # the early check, then the connection
    assert check.ok is False and "内部アドレス（127.0.0.1）" in check.message, check.message
    # The socket was opened to the listener and closed before a single byte (not even TLS) was sent.
    assert listener.wait_for_connection()
    assert listener.received == [b""]


def test_production_checks_the_connected_peer_on_every_call(monkeypatch, listener):
    Resolver(monkeypatch, "meisai.example", ["127.0.0.1"])
    client = MeisaiClient(f"https://meisai.example:{listener.port}/demo/", TOKEN, retry=FAST_RETRY)
    with pytest.raises(MeisaiDestinationError) as raised:
        client.import_customers(customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams())
    assert not raised.value.retryable and not raised.value.outcome_unknown
    assert "MEISAI_ALLOWED_HOSTS" in raised.value.user_message
    assert listener.wait_for_connection() and listener.received == [b""]


@pytest.mark.parametrize("address", ["10.1.2.3", "169.254.169.254", "fd00::5", "127.0.0.1"])
def test_the_early_check_names_the_internal_address(monkeypatch, address):
    Resolver(monkeypatch, "intranet.example", [address])
    with pytest.raises(MeisaiDestinationError) as raised:
        check_destination("https://intranet.example/demo/", DestinationPolicy())
    assert f"（{address}）" in raised.value.user_message


def test_an_allowed_host_may_be_internal(monkeypatch):
    """MEISAI_ALLOWED_HOSTS: a gateway in front of 楽楽明細 — the connection goes ahead (here: TLS starts)."""
    listener = RawListener(reply=b"")
    try:
        Resolver(monkeypatch, "meisai-gw.internal", ["127.0.0.1"])
        policy = DestinationPolicy.of(allowed_hosts=["MEISAI-GW.internal"])
        check_destination("https://meisai-gw.internal/demo/", policy)
        client = MeisaiClient(f"https://meisai-gw.internal:{listener.port}/demo/", TOKEN, destination=policy,
                              retry=FAST_RETRY)
        check = client.test_connection()
        assert listener.wait_for_connection()
    finally:
        listener.stop()
    assert check.ok is False and "内部アドレス" not in check.message
    assert listener.received[0][:1] == b"\x16"  # a TLS handshake record: the client did connect


def test_an_ip_literal_is_checked_too(listener):
    client = MeisaiClient(f"https://127.0.0.1:{listener.port}/demo/", TOKEN, retry=FAST_RETRY)
    check = client.test_connection()
    assert check.ok is False and "内部アドレス（127.0.0.1）" in check.message
    assert listener.connections_so_far() == []  # refused by the early check: not even a connection


def test_environment_proxies_are_not_used(monkeypatch, target):
    """A proxy would become the peer and could connect anywhere: the client always connects directly."""
    proxy = RecordingServer()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, proxy.root)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        dev_client(target.root).search_customers("x")
    finally:
        proxy.stop()
    assert proxy.requests == [] and len(target.requests) == 1


# --- 4. bounded answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [trickling_body, trickling_headers], ids=["body", "headers"])
def test_a_server_trickling_bytes_cannot_hold_a_call(script):
    server = ScriptedServer(script)
    try:
        client = dev_client(server.root, read_timeout=30, call_timeout=1.0, retry=NO_RETRY)
        started = time.monotonic()
        with pytest.raises(MeisaiConnectionError) as raised:
            client.search_customers("x")
        elapsed = time.monotonic() - started
        assert server.closed.wait(10)  # the connection was closed, the server's loop ended
    finally:
        server.stop()
    # Each byte came well within the 30 s read timeout; only the call's own deadline ends it.
    assert elapsed < 10
    assert raised.value.reason == "timeout"
    assert raised.value.user_message.startswith("楽楽明細から時間内に応答がありませんでした。")


def test_a_trickled_tls_handshake_is_cut_at_the_deadline_too():
    server = ScriptedServer(trickling_tls_handshake, tls_hello=True)
    try:
        client = MeisaiClient(f"https://127.0.0.1:{server.port}/demo/", TOKEN, retry=NO_RETRY, read_timeout=30,
                              call_timeout=1.0, destination=DestinationPolicy.of(allowed_hosts=["127.0.0.1"]))
        started = time.monotonic()
        with pytest.raises(MeisaiConnectionError) as raised:
            client.search_customers("x")
        elapsed = time.monotonic() - started
        assert server.closed.wait(10)
    finally:
        server.stop()
    assert raised.value.reason == "timeout" and elapsed < 10


def test_a_post_cut_at_its_deadline_is_flagged_unknown_and_not_resent():
    server = ScriptedServer(trickling_body)
    exchanges = []
    try:
        client = dev_client(server.root, read_timeout=30, call_timeout=1.0, log_exchange=exchanges.append)
        with pytest.raises(MeisaiConnectionError) as raised:
            client.import_customers(customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams())
    finally:
        server.stop()
    assert raised.value.outcome_unknown is True
    assert len(exchanges) == 1


def test_connection_test_answers_within_its_timeout_against_a_trickling_server():
    server = ScriptedServer(trickling_headers)
    try:
        started = time.monotonic()
        check = dev_client(server.root).test_connection(timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert (check.ok, check.reason) == (False, "timeout")
    assert elapsed < 10


def test_an_endless_answer_is_read_only_up_to_the_limit():
    server = ScriptedServer(endless_body)
    exchanges = []
    try:
        client = dev_client(server.root, call_timeout=30, log_exchange=exchanges.append)
        with pytest.raises(MeisaiResponseTooLarge) as raised:
            client.search_customers("x")
        assert server.closed.wait(10)
    finally:
        server.stop()
    assert raised.value.http_status == 200 and not raised.value.retryable
    # The client stopped reading and hung up: the server could write its 1 MiB plus what the socket buffers
    # hold, nowhere near the endless stream it tried to send.
    assert MAX_RESPONSE_BYTES < server.sent < 32 * MAX_RESPONSE_BYTES
    assert exchanges[0].response_text is None


def test_a_declared_oversized_answer_is_refused_without_reading_it():
    server = ScriptedServer(huge_declared_body)
    try:
        client = dev_client(server.root, call_timeout=30)
        started = time.monotonic()
        with pytest.raises(MeisaiResponseTooLarge):
            client.import_customers(customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams())
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert elapsed < 5  # not waiting for the 10 MiB to trickle in


def test_a_post_with_an_oversized_success_is_flagged_unknown():
    server = ScriptedServer(endless_body)
    try:
        client = dev_client(server.root, call_timeout=30)
        with pytest.raises(MeisaiResponseTooLarge) as raised:
            client.import_customers(customer_csv(customer_rows(1)), "顧客.csv", CustomerImportParams())
    finally:
        server.stop()
    assert raised.value.outcome_unknown is True  # a 2xx to a POST: it may have been accepted
