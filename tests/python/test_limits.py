"""Limit strings: the limits library's grammar, exact round-trip str(), clear errors, and
the places that take a limit (tiers) accepting one."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from conftest import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from ratelimiter import ConfigurationError, Limit, MemoryBackend, parse_limits
from ratelimiter.exceptions import ConfigurationTypeError
from ratelimiter.tiers import TieredLimits

S, MIN, H, D = 1.0, 60.0, 3600.0, 86400.0
UNITS = {"second": S, "minute": MIN, "hour": H, "day": D, "month": 30 * D, "year": 365 * D}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/second", [Limit(10, S)]),
        ("10/second;1000/day", [Limit(10, S), Limit(1000, D)]),
        ("10 per second", [Limit(10, S)]),
        ("10/5 minutes", [Limit(10, 5 * MIN)]),
        ("10 per 5 minutes", [Limit(10, 5 * MIN)]),
        ("10/5minutes", [Limit(10, 5 * MIN)]),
        ("  3 / HOURS , 4 Per Month ", [Limit(3, H), Limit(4, 30 * D)]),
        ("1/year|2/2 years", [Limit(1, 365 * D), Limit(2, 2 * 365 * D)]),
        ("7/1 Day", [Limit(7, D)]),
        ("10/1.5 seconds", [Limit(10, 1.5)]),
        ("4503599627370496/second", [Limit(2**52, S)]),
        ("007/minute", [Limit(7, MIN)]),
    ],
)
def test_grammar(text: str, expected: list[Limit]) -> None:
    assert parse_limits(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10/fortnight", "bad limit '10/fortnight': unknown unit 'fortnight'"),
        ("0/second", "bad limit '0/second': amount must be a positive integer <= 2**52, got 0"),
        ("-1/minute", "bad limit '-1/minute': amount '-1' is not a positive integer"),
        ("1e9999/day", "bad limit '1e9999/day': amount '1e9999' is not a positive integer"),
        ("1.5/day", "amount '1.5' is not a positive integer"),
        ("4503599627370497/second", "amount must be a positive integer <= 2**52"),
        ("", "empty limit string ''"),
        ("   ", "empty limit string"),
        ("10/", "bad limit '10/': missing unit"),
        ("/second", "bad limit '/second': missing amount"),
        ("10/0 seconds", "bad limit '10/0 seconds': window must be a finite number of "
                          "seconds > 0, got '0' seconds"),
        ("10/0.0 seconds", "window must be a finite number of seconds > 0"),
        ("10/1e3 seconds", "bad limit '10/1e3 seconds'"),
        ("10/1..5 seconds", "window multiplier '1..5' is not a number"),
        ("abc", "bad limit 'abc': expected 'N/unit', 'N per unit' or 'N/M units'"),
        ("10 second", "bad limit '10 second': expected"),
        ("10/second extra", "bad limit '10/second extra': expected"),
        ("10/s", "unknown unit 's'"),
        ("10/secondss", "unknown unit 'secondss'"),
        ("10/second;1000/fortnight", "bad limit '1000/fortnight' in '10/second;1000/fortnight'"),
        ("10/second;", "bad limit '' in '10/second;': empty item"),
        ("9" * 5000 + "/second", "is not a positive integer <= 2**52"),
        ("10/" + "9" * 500 + " days", "window multiplier"),
        ("10/" + "9" * 305 + " years", "window must be a finite number of seconds > 0"),
    ],
    ids=lambda value: value[:40],
)
def test_bad_text_names_the_item(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as info:
        parse_limits(text)
    assert len(str(info.value)) < 400  # a huge input is cut in the message


@pytest.mark.parametrize("value", [None, 10, b"10/second", {"requests": "10/second"},
                                   ["10/second", 3]])
def test_wrong_types(value: Any) -> None:
    with pytest.raises(ConfigurationTypeError):
        parse_limits(value)


def test_identical_duplicates_merge_conflicting_ones_stay() -> None:
    assert parse_limits("10/minute;10/60 seconds;10 per 1 minute") == [Limit(10, MIN)]
    assert parse_limits("10/second;5/second") == [Limit(10, S), Limit(5, S)]
    assert parse_limits("1000/day;10/second;1000/day") == [Limit(1000, D), Limit(10, S)]
    # Same rate, different windows: different limits (bursts differ), both kept.
    assert parse_limits("1/second;60/minute") == [Limit(1, S), Limit(60, MIN)]


def test_limits_and_iterables_are_accepted() -> None:
    assert parse_limits(Limit(3, 2.0)) == [Limit(3, 2.0)]
    assert parse_limits(["10/second;20/minute", Limit(1, D), "10/second"]) == [
        Limit(10, S), Limit(20, MIN), Limit(1, D)]
    with pytest.raises(ConfigurationError, match="no limit given"):
        parse_limits([])


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (Limit(10, S), "10/second"),
        (Limit(10, 5 * MIN), "10/5 minutes"),
        (Limit(10, 90), "10/90 seconds"),
        (Limit(10, 2 * H), "10/2 hours"),
        (Limit(1000, D), "1000/day"),
        (Limit(5, 7 * D), "5/7 days"),
        (Limit(5, 60 * D), "5/2 months"),
        (Limit(5, 365 * D), "5/year"),
        (Limit(10, 1.5), "10/1.5 seconds"),
        (Limit(10, 0.1), "10/0.1 seconds"),
        (Limit(10, 1e-5), "10/0.00001 seconds"),
    ],
)
def test_str_is_canonical_and_round_trips(limit: Limit, text: str) -> None:
    assert str(limit) == text
    assert parse_limits(text) == [limit]


@given(
    amount=st.integers(1, 2**52),
    window=st.floats(min_value=0, exclude_min=True, allow_infinity=False, allow_nan=False),
)
def test_str_round_trips_exactly(amount: int, window: float) -> None:
    limit = Limit(amount, window)
    assert parse_limits(str(limit)) == [limit]
    assert parse_limits(str(limit))[0].window == window  # bit for bit, not approximately


@given(
    amount=st.integers(1, 2**52),
    multiplier=st.one_of(st.none(), st.integers(1, 10**6)),
    unit=st.sampled_from(sorted(UNITS)),
    plural=st.booleans(),
    per=st.booleans(),
    upper=st.booleans(),
    space=st.sampled_from(["", " ", "  \t"]),
)
def test_generated_text_parses_to_its_value(amount: int, multiplier: Any, unit: str,
                                            plural: bool, per: bool, upper: bool,
                                            space: str) -> None:
    name = (unit.upper() if upper else unit) + ("s" if plural else "")
    separator = " per " if per else f"{space}/{space}"
    count = "" if multiplier is None else f"{multiplier}{space or ' '}"
    text = f"{space}{amount}{separator}{count}{name}{space}"
    expected = Limit(amount, (multiplier or 1) * UNITS[unit])
    assert parse_limits(text) == [expected]
    assert parse_limits(f"{text};{text},{text}") == [expected]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 1.0), ConfigurationError, "amount must be a positive integer <= 2**52, got 0"),
        ((2**52 + 1, 1.0), ConfigurationError, "amount must be a positive integer"),
        ((True, 1.0), ConfigurationTypeError, "amount must be an int, got bool"),
        ((1.0, 1.0), ConfigurationTypeError, "amount must be an int, got float"),
        ((1, 0), ConfigurationError, "window must be a finite number > 0, got 0"),
        ((1, -1.0), ConfigurationError, "window must be a finite number > 0"),
        ((1, math.inf), ConfigurationError, "window must be a finite number > 0, got inf"),
        ((1, math.nan), ConfigurationError, "window must be a finite number > 0, got nan"),
        ((1, 10**400), ConfigurationError, "window must be finite"),
        ((1, "60"), ConfigurationTypeError, "window must be a number of seconds, got str"),
        ((1, False), ConfigurationTypeError, "window must be a number of seconds, got bool"),
    ],
)
def test_limit_validates(args: tuple[Any, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Limit(*args)


def test_limit_value_semantics() -> None:
    limit = Limit(10, 60)
    assert limit.window == 60.0 and isinstance(limit.window, float)
    assert limit == Limit(10, 60.0) and hash(limit) == hash(Limit(10, 60.0))
    assert limit.per_second == 10 / 60
    with pytest.raises(AttributeError):
        limit.amount = 5  # type: ignore[misc]
    assert Limit.parse(" 100 per hour ") == Limit(100, H)
    with pytest.raises(ConfigurationError, match="expected exactly one limit, got 2"):
        Limit.parse("1/second;2/minute")


# --- places that take a limit ----------------------------------------------------------


def test_tiers_take_limit_strings() -> None:
    clock = FakeClock()
    tiers = TieredLimits.build(
        MemoryBackend(),
        {"free": "3/minute", "pro": "10 per 1 minute", "team": Limit(5, 60), "old": (2, 60)},
        default_plan="free",
        clock=clock,
    )
    assert {name: (lim.limit, lim.window) for name, lim in tiers.plans.items()} == {
        "free": (3, 60.0), "pro": (10, 60.0), "team": (5, 60.0), "old": (2, 60.0)}
    assert [tiers.is_allowed("k", plan="free").allowed for _ in range(4)] == [
        True, True, True, False]
    assert sum(tiers.is_allowed("k", plan="pro").allowed for _ in range(12)) == 10


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3/minute;100/day", "plans['free']: give one limit per plan, got 2"),
        ("3/fortnight", "bad limit '3/fortnight'"),
    ],
)
def test_tiers_reject_bad_limit_strings(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        TieredLimits.build(MemoryBackend(), {"free": spec}, default_plan="free")
