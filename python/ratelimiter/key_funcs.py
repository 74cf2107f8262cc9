"""Who is the client? Key functions for the WSGI and ASGI middleware.

Each factory returns a ``key_func``: ``(environ) -> str`` for
:class:`~ratelimiter.middleware.RateLimitMiddleware`, ``(scope) -> str`` for
:class:`~ratelimiter.middleware.AsyncRateLimitMiddleware`.

**Client IP and X-Forwarded-For.** Every proxy *appends* the address it received the
request from, so only the rightmost entries of ``X-Forwarded-For`` were written by your own
proxies; anything to their left is whatever the client sent and can be forged. These
functions therefore never use the leftmost entry:

* ``num_proxies=N`` (default 1 when ``trust_x_forwarded_for=True``): the client is the
  N-th entry from the right, i.e. the address your outermost proxy saw.
* ``trusted_proxies=["10.0.0.0/8", ...]``: the header is used only when the direct peer is
  in one of these networks; then (unless ``num_proxies`` is given too) entries are walked
  from the right, skipping trusted proxies, and the first untrusted address is the client.
* Without ``trusted_proxies`` the header is used only when the direct peer is on loopback
  or a private network (:data:`DEFAULT_PROXY_NETWORKS`: where a reverse proxy in front of
  the app connects from). A client connecting directly from a public address can write
  any header it likes, so its header is ignored and the peer address is the key.
* A missing, malformed or oversized header (more than 4096 characters), or one with fewer
  entries than ``num_proxies``, means the peer address is used. The IP functions never
  raise on request input.

Addresses are normalised: ``::ffff:192.0.2.1`` is ``192.0.2.1``, IPv6 is compressed, and
with ``ipv6_prefix=64`` an IPv6 client is keyed by its /64 network (a host usually owns a
whole /64, so per-address limits are trivially evaded by rotating addresses).

**API keys** are hashed (SHA-256, first 32 hex digits) before they become storage keys, so
the raw secrets never reach Redis, SQLite or your metrics: ``"apikey:<hash>"``. Any client
can send any key, so each new value is a fresh bucket: pass ``verify=`` (``str -> bool``)
so that an unknown key is limited by the client address instead, and never let an
unverified key be the only limit on an endpoint.
"""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, Union

from ._protocols import Scope

__all__ = [
    "DEFAULT_PROXY_NETWORKS",
    "AsgiKeyFunc",
    "WsgiKeyFunc",
    "asgi_api_key_func",
    "asgi_composite_key_func",
    "asgi_ip_func",
    "hash_api_key",
    "wsgi_api_key_func",
    "wsgi_composite_key_func",
    "wsgi_ip_func",
]

WsgiKeyFunc = Callable[[dict[str, Any]], str]
AsgiKeyFunc = Callable[[Scope], str]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

MAX_FORWARDED_LENGTH = 4096
"""Longer ``X-Forwarded-For`` headers are ignored (the peer address is used)."""

DEFAULT_PROXY_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "127.0.0.0/8",     # loopback
        "10.0.0.0/8",      # RFC 1918 private networks
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",         # IPv6 loopback
        "fc00::/7",        # IPv6 unique local addresses
    )
)
"""Peers whose ``X-Forwarded-For`` is honoured when no ``trusted_proxies`` are given.

Deliberately not ``ipaddress``'s ``is_private``: that also covers documentation, benchmark
and reserved ranges (``203.0.113.0/24``, ``198.18.0.0/15``, ...) which are routable in
practice or used as public addresses in tests, and link-local addresses. IPv4-mapped IPv6
peers (``::ffff:10.0.0.1``) are mapped to IPv4 before the check.
"""

_MAX_ADDRESS_LENGTH = 64  # longest textual IPv6 with brackets, port and zone fits easily
_MAX_PEER_KEY_LENGTH = 256
UNKNOWN = "unknown"


# --------------------------------------------------------------------------- addresses


def parse_ip(text: str) -> Optional[IPAddress]:
    """Parse one address as found in ``X-Forwarded-For`` or a peer field; ``None`` if bad.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]:443`` and zone
    ids (dropped); maps ``::ffff:a.b.c.d`` to ``a.b.c.d``.
    """
    s = text.strip()
    if not s or len(s) > _MAX_ADDRESS_LENGTH:
        return None
    if s[0] == "[":
        end = s.find("]")
        if end < 0 or (end + 1 < len(s) and not s[end + 1:].startswith(":")):
            return None
        s = s[1:end]
    elif s.count(":") == 1:  # IPv4 with a port
        s = s.partition(":")[0]
    s = s.partition("%")[0]
    try:
        address = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _address_key(address: IPAddress, ipv6_prefix: Optional[int]) -> str:
    if ipv6_prefix is not None and isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def _peer_key(raw: object, peer: Optional[IPAddress], ipv6_prefix: Optional[int]) -> str:
    if peer is not None:
        return _address_key(peer, ipv6_prefix)
    if isinstance(raw, str) and raw:
        return raw[:_MAX_PEER_KEY_LENGTH]  # e.g. a unix socket path
    return UNKNOWN


def _parse_networks(trusted_proxies: Iterable[str]) -> tuple[IPNetwork, ...]:
    if isinstance(trusted_proxies, str):
        trusted_proxies = (trusted_proxies,)
    networks: list[IPNetwork] = []
    for cidr in trusted_proxies:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: invalid network {cidr!r}: {exc}") from None
    return tuple(networks)


class _ClientAddress:
    """The X-Forwarded-For policy shared by the WSGI and ASGI IP key functions."""

    __slots__ = ("_networks", "_num_proxies", "_peer_networks", "_walk", "ipv6_prefix",
                 "trust_forwarded")

    def __init__(
        self,
        trust_x_forwarded_for: bool,
        num_proxies: Optional[int],
        trusted_proxies: Optional[Iterable[str]],
        ipv6_prefix: Optional[int],
    ) -> None:
        if num_proxies is not None and (
            isinstance(num_proxies, bool) or not isinstance(num_proxies, int) or num_proxies < 1
        ):
            raise ValueError(f"num_proxies must be an int >= 1, got {num_proxies!r}")
        if ipv6_prefix is not None and (
            isinstance(ipv6_prefix, bool)
            or not isinstance(ipv6_prefix, int)
            or not 1 <= ipv6_prefix <= 128
        ):
            raise ValueError(f"ipv6_prefix must be an int in [1, 128], got {ipv6_prefix!r}")
        self.trust_forwarded = bool(trust_x_forwarded_for)
        self._networks = None if trusted_proxies is None else _parse_networks(trusted_proxies)
        # Whose header counts at all: your proxies if you named them, else only peers on
        # loopback or a private network (a public peer may be the client itself).
        self._peer_networks = (
            DEFAULT_PROXY_NETWORKS if self._networks is None else self._networks
        )
        # With trusted_proxies and no explicit hop count, walk past every trusted hop.
        self._walk = self._networks is not None and num_proxies is None
        self._num_proxies = 1 if num_proxies is None else num_proxies
        self.ipv6_prefix = ipv6_prefix

    def _trusted(self, address: IPAddress) -> bool:
        """Whether a hop inside the header is one of the configured proxies (walk mode)."""
        networks = self._networks
        if networks is None:
            return True
        return any(address in network for network in networks)

    def _peer_may_forward(self, peer: Optional[IPAddress]) -> bool:
        """Whether the direct peer is a proxy whose ``X-Forwarded-For`` may be believed."""
        if peer is None:  # no address (absent, unix socket): nothing vouches for it
            return False
        return any(peer in network for network in self._peer_networks)

    def key(self, raw_peer: object, forwarded: Optional[str]) -> str:
        """The client key from the peer address and the (joined) X-Forwarded-For value."""
        try:
            return self._key(raw_peer, forwarded)
        except Exception:  # never let a hostile header turn into a 500
            return _peer_key(raw_peer, None, None)

    def _key(self, raw_peer: object, forwarded: Optional[str]) -> str:
        peer = parse_ip(raw_peer) if isinstance(raw_peer, str) else None
        fallback = _peer_key(raw_peer, peer, self.ipv6_prefix)
        if not self.trust_forwarded or not forwarded or len(forwarded) > MAX_FORWARDED_LENGTH:
            return fallback
        if not self._peer_may_forward(peer):
            return fallback
        entries = forwarded.split(",")
        if self._walk:
            client: Optional[IPAddress] = None
            for entry in reversed(entries):
                client = parse_ip(entry)
                if client is None:
                    return fallback
                if not self._trusted(client):
                    break
        else:
            if len(entries) < self._num_proxies:
                return fallback
            client = parse_ip(entries[-self._num_proxies])
        if client is None:
            return fallback
        return _address_key(client, self.ipv6_prefix)


def hash_api_key(value: str) -> str:
    """The storage key of an API key: ``"apikey:"`` + the first 32 hex digits of SHA-256."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return "apikey:" + digest[:32]


# --------------------------------------------------------------------------- headers


def wsgi_header(environ: Mapping[str, Any], name: str) -> str:
    """A request header from a WSGI ``environ`` (``""`` when absent)."""
    upper = name.upper().replace("-", "_")
    if upper not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        upper = "HTTP_" + upper
    value = environ.get(upper, "")
    return value if isinstance(value, str) else ""


def asgi_header(scope: Mapping[str, Any], name: str) -> str:
    """A request header from an ASGI ``scope``; repeated headers are joined with ``,``.

    Returns ``""`` when absent. Bytes are decoded as latin-1 (never fails).
    """
    target = name.lower().encode("latin-1")
    values: list[str] = []
    for item in scope.get("headers") or ():
        try:
            header, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(header, bytes) and header.lower() == target and isinstance(value, bytes):
            values.append(value.decode("latin-1"))
    return ",".join(values)


def wsgi_peer(environ: Mapping[str, Any]) -> str:
    """The normalised address of the direct peer of a WSGI request."""
    raw = environ.get("REMOTE_ADDR")
    address = parse_ip(raw) if isinstance(raw, str) else None
    return _peer_key(raw, address, None)


def asgi_peer(scope: Mapping[str, Any]) -> str:
    """The normalised address of the direct peer of an ASGI connection."""
    raw = _asgi_client_host(scope)
    address = parse_ip(raw) if isinstance(raw, str) else None
    return _peer_key(raw, address, None)


def _asgi_client_host(scope: Mapping[str, Any]) -> Optional[str]:
    client = scope.get("client")
    if client:
        try:
            host = client[0]
        except (TypeError, IndexError, KeyError):
            return None
        return host if isinstance(host, str) else None
    return None


# --------------------------------------------------------------------------- WSGI


def wsgi_ip_func(
    trust_x_forwarded_for: bool = True,
    *,
    num_proxies: Optional[int] = None,
    trusted_proxies: Optional[Iterable[str]] = None,
    ipv6_prefix: Optional[int] = None,
) -> WsgiKeyFunc:
    """A WSGI key function returning the client IP address.

    Args:
        trust_x_forwarded_for: Use ``X-Forwarded-For`` (read from the right, see the module
            docstring). ``False``: always the peer address (``REMOTE_ADDR``).
        num_proxies: How many proxies of yours append to the header (default 1).
        trusted_proxies: CIDRs of your proxies; the header is used only when the peer is
            one of them.
        ipv6_prefix: Group IPv6 clients by this prefix length (e.g. ``64``).

    Raises:
        ValueError: for a bad ``num_proxies``, ``trusted_proxies`` or ``ipv6_prefix``.
    """
    policy = _ClientAddress(trust_x_forwarded_for, num_proxies, trusted_proxies, ipv6_prefix)

    def key_func(environ: dict[str, Any]) -> str:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR") if policy.trust_forwarded else None
        return policy.key(
            environ.get("REMOTE_ADDR"), forwarded if isinstance(forwarded, str) else None
        )

    return key_func


def wsgi_api_key_func(
    header: str = "X-API-Key",
    fallback: Optional[WsgiKeyFunc] = None,
    *,
    verify: Optional[Callable[[str], bool]] = None,
) -> WsgiKeyFunc:
    """A WSGI key function returning ``"apikey:<sha256 prefix>"`` of an API key header.

    Without ``verify`` any value a client sends is its own bucket, so rotating made-up keys
    is never limited: use ``verify``, or a second limit by client address.

    Args:
        header: Header holding the key (case-insensitive), e.g. ``"Authorization"``.
        fallback: Key function used when the header is absent or blank, or the key fails
            ``verify``; default :func:`wsgi_ip_func`'s.
        verify: ``(api_key) -> bool``, true for keys you issued (e.g. a set lookup). An
            unknown key is keyed by ``fallback`` (the client address), so guessing shares
            one bucket. Must return a ``bool``; its exceptions propagate.

    Raises:
        TypeError: if ``verify`` is not a plain (non-async) callable.
    """
    use_fallback = fallback if fallback is not None else wsgi_ip_func()
    check = _check_verify(verify)

    def key_func(environ: dict[str, Any]) -> str:
        api_key = wsgi_header(environ, header).strip()
        if api_key and (check is None or _verified(check, api_key)):
            return hash_api_key(api_key)
        return use_fallback(environ)

    return key_func


def _check_verify(verify: Optional[Callable[[str], bool]]) -> Optional[Callable[[str], bool]]:
    if verify is None:
        return None
    if not callable(verify):
        raise TypeError(f"verify must be a callable (api_key) -> bool, got {type(verify).__name__}")
    if inspect.iscoroutinefunction(verify):
        # A key function is synchronous: a coroutine object is truthy, so an async verify
        # would accept every key.
        raise TypeError("verify must be a plain function, not async (key functions are sync)")
    return verify


def _verified(verify: Callable[[str], bool], api_key: str) -> bool:
    answer = verify(api_key)
    if not isinstance(answer, bool):
        if inspect.iscoroutine(answer):
            answer.close()  # never awaited: silence the "never awaited" warning
        raise TypeError(f"verify must return a bool, got {type(answer).__name__}")
    return answer


def wsgi_composite_key_func(*funcs: WsgiKeyFunc, separator: str = "|") -> WsgiKeyFunc:
    """Join several WSGI key functions' keys: ``"key1|key2|..."``.

    Raises:
        ValueError: with fewer than two functions.
    """
    if len(funcs) < 2:
        raise ValueError("wsgi_composite_key_func requires at least two key functions")

    def key_func(environ: dict[str, Any]) -> str:
        return separator.join(f(environ) for f in funcs)

    return key_func


# --------------------------------------------------------------------------- ASGI


def asgi_ip_func(
    trust_x_forwarded_for: bool = True,
    *,
    num_proxies: Optional[int] = None,
    trusted_proxies: Optional[Iterable[str]] = None,
    ipv6_prefix: Optional[int] = None,
) -> AsgiKeyFunc:
    """An ASGI key function returning the client IP address (see :func:`wsgi_ip_func`)."""
    policy = _ClientAddress(trust_x_forwarded_for, num_proxies, trusted_proxies, ipv6_prefix)

    def key_func(scope: Scope) -> str:
        forwarded = asgi_header(scope, "x-forwarded-for") if policy.trust_forwarded else None
        return policy.key(_asgi_client_host(scope), forwarded)

    return key_func


def asgi_api_key_func(
    header: str = "X-API-Key",
    fallback: Optional[AsgiKeyFunc] = None,
    *,
    verify: Optional[Callable[[str], bool]] = None,
) -> AsgiKeyFunc:
    """An ASGI key function returning ``"apikey:<sha256 prefix>"`` of an API key header.

    Args:
        header: Header holding the key (case-insensitive).
        fallback: Key function used when the header is absent or blank, or the key fails
            ``verify``; default :func:`asgi_ip_func`'s.
        verify: ``(api_key) -> bool`` (sync); see :func:`wsgi_api_key_func`.

    Raises:
        TypeError: if ``verify`` is not a plain (non-async) callable.
    """
    use_fallback = fallback if fallback is not None else asgi_ip_func()
    check = _check_verify(verify)

    def key_func(scope: Scope) -> str:
        api_key = asgi_header(scope, header).strip()
        if api_key and (check is None or _verified(check, api_key)):
            return hash_api_key(api_key)
        return use_fallback(scope)

    return key_func


def asgi_composite_key_func(*funcs: AsgiKeyFunc, separator: str = "|") -> AsgiKeyFunc:
    """Join several ASGI key functions' keys: ``"key1|key2|..."``.

    Raises:
        ValueError: with fewer than two functions.
    """
    if len(funcs) < 2:
        raise ValueError("asgi_composite_key_func requires at least two key functions")

    def key_func(scope: Scope) -> str:
        return separator.join(f(scope) for f in funcs)

    return key_func
