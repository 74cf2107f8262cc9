"""Key functions: client IP behind proxies (secure X-Forwarded-For), API keys, composites."""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimiter.key_funcs import (
    asgi_api_key_func,
    asgi_composite_key_func,
    asgi_ip_func,
    wsgi_api_key_func,
    wsgi_composite_key_func,
    wsgi_ip_func,
)


def environ(peer: Optional[str] = "192.0.2.10", xff: Optional[str] = None,
            **headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    if peer is not None:
        env["REMOTE_ADDR"] = peer
    if xff is not None:
        env["HTTP_X_FORWARDED_FOR"] = xff
    for name, value in headers.items():
        env["HTTP_" + name.upper()] = value
    return env


def scope(peer: Optional[str] = "192.0.2.10", xff: Any = None,
          headers: Optional[list[tuple[bytes, bytes]]] = None) -> dict[str, Any]:
    raw: list[tuple[bytes, bytes]] = list(headers or [])
    if isinstance(xff, str):
        raw.append((b"x-forwarded-for", xff.encode("latin-1")))
    elif isinstance(xff, list):
        raw.extend((b"x-forwarded-for", v.encode()) for v in xff)
    return {"type": "http", "headers": raw,
            "client": None if peer is None else (peer, 5555)}


# --------------------------------------------------------------------------- documented


PROXY = "10.0.0.2"  # a private-network peer: the reverse proxy whose header is believed


def test_documented_signatures_and_defaults() -> None:
    assert wsgi_ip_func()(environ(peer=PROXY, xff="203.0.113.5")) == "203.0.113.5"
    assert wsgi_ip_func(trust_x_forwarded_for=False)(environ(xff="203.0.113.5")) == "192.0.2.10"
    assert wsgi_ip_func(False)(environ()) == "192.0.2.10"
    assert asgi_ip_func()(scope(peer=PROXY, xff="203.0.113.5")) == "203.0.113.5"
    assert asgi_ip_func(trust_x_forwarded_for=False)(scope(xff="203.0.113.5")) == "192.0.2.10"


def test_missing_peer_is_unknown() -> None:
    assert wsgi_ip_func()(environ(peer=None)) == "unknown"
    assert asgi_ip_func()(scope(peer=None)) == "unknown"


# --------------------------------------------------------------------------- X-Forwarded-For


def test_rightmost_entry_is_used_never_the_forgeable_leftmost() -> None:
    f = wsgi_ip_func()
    assert f(environ(peer=PROXY, xff="6.6.6.6, 203.0.113.5")) == "203.0.113.5"
    assert asgi_ip_func()(scope(peer=PROXY, xff="6.6.6.6,203.0.113.5")) == "203.0.113.5"


def test_num_proxies_counts_from_the_right() -> None:
    f = wsgi_ip_func(num_proxies=2)
    assert f(environ(peer=PROXY, xff="6.6.6.6, 203.0.113.5, 10.0.0.2")) == "203.0.113.5"
    # fewer entries than proxies: the header cannot be genuine -> peer
    assert f(environ(peer=PROXY, xff="203.0.113.5")) == PROXY


def test_trusted_proxies_untrusted_peer_ignores_header() -> None:
    f = wsgi_ip_func(trusted_proxies=["10.0.0.0/8"])
    assert f(environ(peer="192.0.2.10", xff="203.0.113.5")) == "192.0.2.10"
    g = asgi_ip_func(trusted_proxies=["10.0.0.0/8"])
    assert g(scope(peer="192.0.2.10", xff="203.0.113.5")) == "192.0.2.10"


def test_trusted_proxies_walks_past_trusted_hops() -> None:
    f = wsgi_ip_func(trusted_proxies=["10.0.0.0/8", "172.16.0.0/12"])
    env = environ(peer="10.0.0.1", xff="6.6.6.6, 203.0.113.5, 172.16.0.3, 10.0.0.9")
    assert f(env) == "203.0.113.5"
    # every hop trusted: the leftmost one is as far as we can see
    assert f(environ(peer="10.0.0.1", xff="10.0.0.7, 10.0.0.8")) == "10.0.0.7"


def test_trusted_proxies_with_num_proxies() -> None:
    f = wsgi_ip_func(trusted_proxies=["10.0.0.0/8"], num_proxies=1)
    assert f(environ(peer="10.0.0.1", xff="6.6.6.6, 203.0.113.5")) == "203.0.113.5"
    assert f(environ(peer="192.0.2.99", xff="6.6.6.6, 203.0.113.5")) == "192.0.2.99"


def test_trusted_proxy_given_as_single_string_and_ipv6() -> None:
    f = asgi_ip_func(trusted_proxies="2001:db8:ffff::/48")
    assert f(scope(peer="2001:db8:ffff::1", xff="2001:db8:1::5")) == "2001:db8:1::5"
    assert f(scope(peer="2001:db8:eeee::1", xff="2001:db8:1::5")) == "2001:db8:eeee::1"


@pytest.mark.parametrize(
    "xff",
    [
        "not-an-ip",
        "unknown",
        "",
        " , ",
        "203.0.113.5, garbage",
        "999.1.1.1",
        "1.2.3.4, ",
        "[2001:db8::1",
        "1.2.3.4:80:90",
        "\x00\xff",
        "1" * 5000,
        "1.2.3.4," * 1000,  # 8000 characters: oversized
    ],
)
def test_malformed_or_huge_header_falls_back_to_peer(xff: str) -> None:
    assert wsgi_ip_func()(environ(peer=PROXY, xff=xff)) == PROXY
    assert asgi_ip_func()(scope(peer=PROXY, xff=xff)) == PROXY
    assert wsgi_ip_func(trusted_proxies=["192.0.2.0/24"])(environ(xff=xff)) == "192.0.2.10"


def test_malformed_hop_in_trusted_walk_falls_back_to_peer() -> None:
    f = wsgi_ip_func(trusted_proxies=["10.0.0.0/8"])
    assert f(environ(peer="10.0.0.1", xff="garbage, 10.0.0.3")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("203.0.113.5:4711", "203.0.113.5"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("[::ffff:203.0.113.5]:80", "203.0.113.5"),
        ("fe80::1%eth0", "fe80::1"),
        ("  203.0.113.5  ", "203.0.113.5"),
    ],
)
def test_address_forms_are_normalised(entry: str, expected: str) -> None:
    assert wsgi_ip_func()(environ(peer=PROXY, xff=entry)) == expected
    assert asgi_ip_func()(scope(peer=PROXY, xff=entry)) == expected


def test_ipv4_mapped_peer_equals_ipv4() -> None:
    f = wsgi_ip_func(trust_x_forwarded_for=False)
    assert f(environ(peer="::ffff:192.0.2.10")) == f(environ(peer="192.0.2.10")) == "192.0.2.10"
    trusted = wsgi_ip_func(trusted_proxies=["192.0.2.0/24"])
    assert trusted(environ(peer="::ffff:192.0.2.10", xff="203.0.113.5")) == "203.0.113.5"


def test_ipv6_prefix_groups_clients() -> None:
    f = asgi_ip_func(trust_x_forwarded_for=False, ipv6_prefix=64)
    a = f(scope(peer="2001:db8:1:2:aaaa::1"))
    b = f(scope(peer="2001:db8:1:2:bbbb::2"))
    c = f(scope(peer="2001:db8:1:3::1"))
    assert a == b == "2001:db8:1:2::/64"
    assert c == "2001:db8:1:3::/64"
    assert f(scope(peer="192.0.2.1")) == "192.0.2.1"  # IPv4 unaffected
    g = wsgi_ip_func(ipv6_prefix=64)
    assert g(environ(peer=PROXY, xff="2001:db8:1:2::99")) == "2001:db8:1:2::/64"


def test_repeated_asgi_headers_are_joined_in_order() -> None:
    f = asgi_ip_func()
    assert f(scope(peer=PROXY, xff=["6.6.6.6", "203.0.113.5"])) == "203.0.113.5"


def test_unix_socket_peer_is_kept_as_is() -> None:
    assert wsgi_ip_func()(environ(peer="/run/app.sock")) == "/run/app.sock"
    assert wsgi_ip_func()(environ(peer="")) == "unknown"


@pytest.mark.parametrize(
    "kwargs",
    [{"num_proxies": 0}, {"num_proxies": True}, {"num_proxies": -1},
     {"trusted_proxies": ["not a net"]}, {"ipv6_prefix": 0}, {"ipv6_prefix": 129}],
)
def test_bad_options_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        wsgi_ip_func(**kwargs)
    with pytest.raises(ValueError):
        asgi_ip_func(**kwargs)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(xff=st.text(max_size=300), peer=st.one_of(st.none(), st.text(max_size=60)))
def test_never_raises_on_arbitrary_input(xff: str, peer: Optional[str]) -> None:
    for f in (wsgi_ip_func(), wsgi_ip_func(trusted_proxies=["0.0.0.0/0", "::/0"]),
              wsgi_ip_func(num_proxies=3, ipv6_prefix=64)):
        key = f(environ(peer=peer, xff=xff))
        assert isinstance(key, str)
        assert 0 < len(key) <= 256
    for g in (asgi_ip_func(), asgi_ip_func(trusted_proxies=["0.0.0.0/0"])):
        raw = xff.encode("utf-8", "surrogatepass")
        key = g({"type": "http", "headers": [(b"x-forwarded-for", raw)],
                 "client": None if peer is None else (peer, 1)})
        assert isinstance(key, str)
        assert 0 < len(key) <= 256


def test_garbage_asgi_scope_shapes_do_not_raise() -> None:
    f = asgi_ip_func()
    assert f({"type": "http"}) == "unknown"
    assert f({"type": "http", "headers": [(b"x-forwarded-for",)], "client": ("1.2.3.4",)}) \
        == "1.2.3.4"
    assert f({"type": "http", "headers": None, "client": []}) == "unknown"


# --------------------------------------------------------------------------- API keys


def expected_hash(value: str) -> str:
    return "apikey:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def test_api_key_is_hashed() -> None:
    f = wsgi_api_key_func()
    key = f(environ(X_API_KEY="s3cret"))
    assert key == expected_hash("s3cret")
    assert "s3cret" not in key
    assert asgi_api_key_func()(scope(headers=[(b"x-api-key", b"s3cret")])) == key


def test_api_key_header_is_case_insensitive_and_stripped() -> None:
    f = asgi_api_key_func("Authorization")
    assert f(scope(headers=[(b"Authorization", b"  Bearer abc ")])) == expected_hash("Bearer abc")
    g = wsgi_api_key_func("Authorization")
    assert g(environ(AUTHORIZATION="Bearer abc")) == expected_hash("Bearer abc")


def test_api_key_fallback() -> None:
    assert wsgi_api_key_func()(environ(peer=PROXY, xff="203.0.113.5")) == "203.0.113.5"  # ip
    assert wsgi_api_key_func(fallback=lambda env: "anon")(environ()) == "anon"
    assert wsgi_api_key_func()(environ(X_API_KEY="   ")) == "192.0.2.10"  # blank: fallback
    assert asgi_api_key_func(fallback=lambda s: "anon")(scope()) == "anon"
    assert asgi_api_key_func()(scope()) == "192.0.2.10"


def test_composite_key_funcs() -> None:
    f = wsgi_composite_key_func(wsgi_api_key_func(), wsgi_ip_func(False))
    assert f(environ(X_API_KEY="k")) == expected_hash("k") + "|192.0.2.10"
    g = asgi_composite_key_func(asgi_ip_func(False), lambda s: "x", separator="/")
    assert g(scope()) == "192.0.2.10/x"
    with pytest.raises(ValueError):
        wsgi_composite_key_func(wsgi_ip_func())
    with pytest.raises(ValueError):
        asgi_composite_key_func()
