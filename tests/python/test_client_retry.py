"""RetryPolicy (Retry-After and IETF RateLimit parsing, backoff with jitter) and CircuitBreaker."""

from __future__ import annotations

import math
from email.utils import formatdate
from typing import Any

import pytest
from conftest import FakeClock

from ratelimiter.client import (
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
    parse_ratelimit_header,
    parse_retry_after,
)
from ratelimiter.client.retry import _Attempts
from ratelimiter.exceptions import ConfigurationError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0.0),
    ("2", 2.0),
    (" 120 ", 120.0),
    ("604800", 604800.0),  # a week: parsed, the policy caps it
    ("99999999999999999999999999999", 1e15),  # absurd: bounded, never an overflow
    (formatdate(NOW + 30, usegmt=True), 30.0),  # HTTP date
    (formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: retry now
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_retry_after_parsed(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", [
    None, "", "soon", "-5", "1e309", "1.5", "+3", "inf", "nan", "0x10", "Wed, 99 Foo 2015",
    "21 Oct 2015 07:28:00",  # no zone: not an HTTP date
])
def test_garbage_retry_after_ignored(value: Any) -> None:
    assert parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize(("headers", "expected"), [
    ({"RateLimit": '"default";r=0;t=30'}, 30.0),
    ({"RateLimit": '"default";r=3;t=30'}, None),  # quota left: nothing to wait for
    ({"RateLimit": '"burst";r=0;t=1, "daily";r=0;t=3600'}, 3600.0),
    ({"RateLimit": '"burst";r=5;t=1, "daily";r=0;t=60'}, 60.0),
    ({"ratelimit": "limit=10, remaining=0, reset=7"}, 7.0),  # draft-03 style, any case
    ({"RateLimit-Remaining": "0", "RateLimit-Reset": "12"}, 12.0),
    ({"RateLimit-Remaining": "1", "RateLimit-Reset": "12"}, None),
    ({"RateLimit": '"default";r=0;t=soon'}, None),
    ({}, None),
])
def test_ietf_ratelimit_header(headers: dict[str, str], expected: Any) -> None:
    assert parse_ratelimit_header(headers) == expected


def test_server_wait_prefers_retry_after_and_is_capped() -> None:
    policy = RetryPolicy(backoff_max=60)
    assert policy.server_wait({"Retry-After": "5", "RateLimit": '"d";r=0;t=9'}) == 5
    assert policy.server_wait({"Retry-After": "soon", "RateLimit": '"d";r=0;t=9'}) == 9
    assert policy.server_wait({"Retry-After": "604800"}) == 60  # a week: capped
    assert policy.server_wait({"Retry-After": "1e309"}) is None  # garbage: back off instead
    assert RetryPolicy(respect_retry_after=False).server_wait({"Retry-After": "5"}) is None


def test_backoff_full_jitter_is_exponential_and_capped() -> None:
    draws = iter([0.5, 0.5, 0.5, 1.0 - 1e-12, 0.0])
    policy = RetryPolicy(backoff_base=0.5, backoff_max=3.0, random=lambda: next(draws))
    assert [policy.backoff(i) for i in range(5)] == pytest.approx(
        [0.25, 0.5, 1.0, 3.0, 0.0])
    assert RetryPolicy(jitter="none", backoff_base=1, backoff_max=10).backoff(2) == 4.0
    assert RetryPolicy(jitter="equal", backoff_base=1, random=lambda: 0.0).backoff(3) == 4.0
    assert RetryPolicy(jitter="none", backoff_max=10).backoff(10_000) == 10.0  # no overflow


def test_attempts_give_up_at_max_retries_or_budget() -> None:
    policy = RetryPolicy(max_retries=2, jitter="none", backoff_base=1, budget=5)
    attempts = _Attempts(policy, now=0.0)
    attempts.sent = 1
    assert attempts.next_wait(2.0, now=0.0) == (2.0, "")
    attempts.sent = 2
    assert attempts.next_wait(None, now=2.0) == (2.0, "")  # backoff 1 * 2**1
    attempts.sent = 3
    assert attempts.next_wait(0.0, now=4.0) == (None, "max_retries")
    attempts = _Attempts(policy, now=0.0)
    attempts.sent = 1
    assert attempts.next_wait(5.0, now=0.0) == (5.0, "")  # ends exactly at the budget
    assert attempts.next_wait(5.0, now=0.5) == (None, "budget")


def test_methods_idempotent_by_default() -> None:
    policy = RetryPolicy()
    assert [policy.retries_method(m) for m in ("GET", "put", "POST", "PATCH")] == [
        True, True, False, False]
    assert RetryPolicy(methods=None).retries_method("POST")
    assert RetryPolicy(methods=["post"]).retries_method("POST")


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"backoff_base": math.nan}, "backoff_base"),
    ({"backoff_max": -1}, "backoff_max"),
    ({"budget": math.inf}, "budget"),
    ({"jitter": "some"}, "jitter"),
    ({"retry_statuses": ["429"]}, "retry_statuses"),
])
def test_bad_policy_arguments(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises((ConfigurationError, TypeError), match=name):
        RetryPolicy(**kwargs)


def test_breaker_opens_after_n_failures_and_half_opens(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failures=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert info.value.retry_after == 10
    clock.advance(9.5)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(0.5)
    assert breaker.state == "half-open"
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the trial runs
    breaker.record_failure()  # trial failed: open for another reset_timeout
    assert breaker.state == "open"
    clock.advance(10)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"failures": 0}, "failures"), ({"failures": True}, "failures"),
    ({"reset_timeout": 0}, "reset_timeout"), ({"reset_timeout": math.inf}, "reset_timeout"),
])
def test_bad_breaker_arguments(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises((ConfigurationError, TypeError), match=name):
        CircuitBreaker(**kwargs)
