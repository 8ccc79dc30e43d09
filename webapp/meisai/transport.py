"""Where the API token may go, and for how long: the HTTP transport under ``MeisaiClient``.

- **Addresses.** With ``DestinationPolicy.restrict_addresses`` (production), every socket the client opens is
  checked *after* it connected and before a byte is sent: its peer must be a public address, unless the URL's
  host is one the operator allows (``MEISAI_ALLOWED_HOSTS``, for a 楽楽明細 reached through an internal gateway).
  Checking the connected peer rather than a lookup made earlier means that a DNS answer that changes between
  the check and the connection cannot take the token to an internal address. ``check_destination`` is that
  earlier lookup, only for a friendly error on the form: it is never what the guarantee rests on.
- **No proxies from the environment.** ``HTTP(S)_PROXY`` would make the proxy the peer and let it connect
  anywhere; the client connects directly, so the peer checked is the host the token is for.
- **Deadline.** ``Deadline`` shuts down the sockets of an exchange that outlives its overall limit: a server
  that trickles bytes (headers, body or TLS handshake) cannot hold a worker or a web request, whatever the
  per-read timeouts.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .errors import MeisaiDestinationError


def normalize_host(host: str) -> str:
    """A host as compared with the allowed list: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def blocked_address(address: str) -> bool:
    """Whether an IP address is one the token must not go to: anything not publicly routable.

    Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 — cloud metadata —,
    fe80::/10), multicast, reserved, unspecified, shared (100.64/10) and documentation ranges; an IPv4-mapped
    IPv6 address counts as its IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
        or ip.is_unspecified or not ip.is_global
    )


@dataclass(frozen=True)
class DestinationPolicy:
    """Which peers the client may connect to. Default: public addresses only (the production rule)."""

    restrict_addresses: bool = True
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, restrict_addresses: bool = True, allowed_hosts: Iterable[str] = ()) -> DestinationPolicy:
        return cls(restrict_addresses, frozenset(normalize_host(h) for h in allowed_hosts if h.strip()))

    def host_allowed(self, host: str) -> bool:
        """Whether any address is fine for this host (no restriction, or the operator allowed the host)."""
        return not self.restrict_addresses or normalize_host(host) in self.allowed_hosts

    def refuses(self, host: str, address: str) -> bool:
        return not self.host_allowed(host) and blocked_address(address)


def check_destination(url: str, policy: DestinationPolicy) -> None:
    """An early lookup of the URL's host: ``MeisaiDestinationError`` when it names an internal address.

    Only for a clear error before anything is attempted (the settings form, 接続テスト); the connection itself
    is checked again on its real peer. A name that does not resolve passes: connecting reports it.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if policy.host_allowed(host):
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (80 if parts.scheme == "http" else 443),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return
    for info in infos:
        address = str(info[4][0])
        if policy.refuses(host, address):
            raise MeisaiDestinationError(normalize_host(host), address)


class DestinationRefused(NewConnectionError):
    """The socket connected to an address the policy refuses; it was closed before anything was sent."""

    def __init__(self, conn, host: str, address: str) -> None:
        self.host = host
        self.address = address
        super().__init__(conn, f"refused: {host} connected to internal address {address}")


class _Guard:
    """Per client: the policy, and a handle on each socket its connections opened, for a deadline to cut."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self.policy = policy
        # (connection, own handle on its socket). A handle of our own because TLS wrapping detaches the
        # original socket object and a response may outlive its connection's hold on the socket; closed by
        # sweep() once the connection let go of it, always under the lock, so that a cut never reaches a
        # descriptor number the system has meanwhile given to another socket.
        self._handles: list[tuple[weakref.ref, socket.socket]] = []
        self._lock = threading.Lock()

    def admit(self, conn, sock: socket.socket) -> None:
        address = str(sock.getpeername()[0])
        if self.policy.refuses(conn.host, address):
            sock.close()
            raise DestinationRefused(conn, normalize_host(conn.host), address)
        with self._lock:
            self._handles.append((weakref.ref(conn), sock.dup()))

    def cut(self) -> None:
        """Shut down every socket still open: blocked reads and writes return at once."""
        with self._lock:
            for _, handle in self._handles:
                try:
                    handle.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def sweep(self, everything: bool = False) -> None:
        """Close the handles of sockets no connection holds any more (after an exchange, or all on close)."""
        with self._lock:
            kept = []
            for ref, handle in self._handles:
                conn = ref()
                if everything or conn is None or conn.sock is None:
                    handle.close()
                else:
                    kept.append((ref, handle))
            self._handles = kept


class _GuardedConnectionMixin:
    def __init__(self, *args, destination_guard: _Guard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._guard = destination_guard

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._guard.admit(self, sock)
        return sock


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, *args, destination_guard: _Guard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._guard = destination_guard
        self.pool_classes_by_scheme = {"http": _GuardedHTTPConnectionPool, "https": _GuardedHTTPSConnectionPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        # Passed to each pool's connections, but not part of the pool key (one guard per manager anyway).
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["destination_guard"] = self._guard
        return super()._new_pool(scheme, host, port, context)


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections obey a ``DestinationPolicy``; never through a proxy."""

    def __init__(self, policy: DestinationPolicy, **kwargs) -> None:
        self._guard = _Guard(policy)
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs) -> None:
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _GuardedPoolManager(
            num_pools=connections, maxsize=maxsize, block=block, destination_guard=self._guard, **pool_kwargs
        )

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={})

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise RuntimeError("the 楽楽明細 client never connects through a proxy")

    def cut_connections(self) -> None:
        """Shut down the sockets of the exchange in progress (called by a ``Deadline``)."""
        self._guard.cut()

    def sweep(self) -> None:
        """After each exchange: let go of the sockets it closed."""
        self._guard.sweep()

    def close(self) -> None:
        super().close()
        self._guard.sweep(everything=True)


class Deadline:
    """``with Deadline(seconds, on_expire):`` calls ``on_expire`` (from a timer thread) if the block outlives
    ``seconds``; ``expired`` tells the block afterwards."""

    def __init__(self, seconds: float, on_expire: Callable[[], None]) -> None:
        self.expired = False
        self._on_expire = on_expire
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        self._on_expire()

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        if self._timer.is_alive():
            self._timer.join()
