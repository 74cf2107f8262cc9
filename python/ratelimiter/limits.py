"""Limit strings: ``"10/second;1000/day"`` as a list of :class:`Limit` values.

The grammar is the one the ``limits`` library (and so Flask-Limiter and slowapi) reads, so a
policy written for them means the same here::

    items  := item ((";" | "," | "|") item)*
    item   := amount ("/" | " per ") [multiplier] unit
    amount := digits                       (1 .. 2**52)
    multiplier := digits ["." digits]      ("10/5 minutes", "10/1.5 seconds")
    unit   := second | minute | hour | day | month | year, optionally plural

Units are case-insensitive and whitespace around every token is ignored. A month is 30
days and a year 365 days (fixed lengths: a window is a duration, not a calendar span).
``str(limit)`` gives the canonical text, which parses back to the same value exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

from .exceptions import ConfigurationError, ConfigurationTypeError

__all__ = ["Limit", "LimitSpec", "parse_limits"]

MAX_AMOUNT = 2**52
"""Largest amount: every count stays exactly representable as a double (as in the core)."""

# Largest unit first: str() picks the largest unit that divides the window exactly.
_UNITS: dict[str, int] = {
    "year": 365 * 86_400,
    "month": 30 * 86_400,
    "day": 86_400,
    "hour": 3_600,
    "minute": 60,
    "second": 1,
}

# Loose on purpose: it finds the pieces of an item, and _parse_item then says which piece
# is wrong ("unknown unit 'fortnight'") instead of a bare "does not match".
_ITEM = re.compile(
    r"(?P<amount>[^/]*?)\s*(?:/|\s+per\s+|^per\s+)\s*(?P<multiplier>[0-9.]*)\s*(?P<unit>\w*)",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[;,|]")
_DIGITS = re.compile(r"[0-9]+")
_MULTIPLIER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# The amount is at most 16 digits (2**52 has 16); longer text is rejected before int() so a
# megabyte of digits costs nothing.
_MAX_AMOUNT_DIGITS = len(str(MAX_AMOUNT))
_MAX_MULTIPLIER_CHARS = 400  # a float's integer part has at most 309 digits
_GRAMMAR = "expected 'N/unit', 'N per unit' or 'N/M units' (unit: second, minute, hour, day, " \
    "month or year)"


@dataclass(frozen=True)
class Limit:
    """``amount`` requests (or cost units) per ``window`` seconds.

    Args:
        amount: A positive ``int`` <= 2**52.
        window: Seconds, a finite number > 0 (stored as a ``float``).

    Raises:
        ConfigurationError: for an out-of-range amount or window (``ConfigurationTypeError``,
            also a ``TypeError``, for a value of the wrong type).
    """

    amount: int
    window: float

    def __post_init__(self) -> None:
        amount: object = self.amount
        window: object = self.window
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ConfigurationTypeError(f"amount must be an int, got {type(amount).__name__}")
        if not 1 <= amount <= MAX_AMOUNT:
            raise ConfigurationError(
                f"amount must be a positive integer <= 2**52, got {amount!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)):
            raise ConfigurationTypeError(
                f"window must be a number of seconds, got {type(window).__name__}")
        try:
            seconds = float(window)
        except OverflowError:  # an int too large for a double
            raise ConfigurationError("window must be finite, got an int too large for a float") \
                from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise ConfigurationError(f"window must be a finite number > 0, got {window!r}")
        object.__setattr__(self, "window", seconds)

    @classmethod
    def parse(cls, text: str) -> Limit:
        """The one limit in ``text`` (``"100/hour"``); several limits are an error."""
        limits = parse_limits(text)
        if len(limits) != 1:
            raise ConfigurationError(
                f"expected exactly one limit, got {len(limits)} in {_show(text)}")
        return limits[0]

    @property
    def per_second(self) -> float:
        """The sustained rate, ``amount / window`` (requests per second)."""
        return self.amount / self.window

    def __str__(self) -> str:
        """Canonical text: the largest unit dividing the window, else fractional seconds.

        ``10/second``, ``10/5 minutes``, ``10/1.5 seconds``; ``parse_limits(str(x)) == [x]``.
        """
        for unit, seconds in _UNITS.items():
            count = self.window / seconds
            if count.is_integer() and count * seconds == self.window:
                if count == 1:
                    return f"{self.amount}/{unit}"
                return f"{self.amount}/{int(count)} {unit}s"
        # Not a whole number of seconds: the shortest decimal that round-trips, written
        # without an exponent (the grammar has none), e.g. 1e-05 -> "0.00001".
        return f"{self.amount}/{Decimal(repr(self.window)):f} seconds"


LimitSpec = Union[str, Limit, Iterable[Union[str, Limit]]]
"""What every ``limits=`` parameter accepts: a limit string, a :class:`Limit`, or an
iterable of those."""


def parse_limits(limits: LimitSpec) -> list[Limit]:
    """Parse ``"10/second;1000/day"`` (or a ``Limit``, or an iterable of strings and limits).

    Items are separated by ``;``, ``,`` or ``|``. Identical limits are merged (``"10/minute;
    10/60 seconds"`` is one limit) and the first occurrence's order kept; different limits
    on the same window are all kept (``"10/second;5/second"`` enforces both, so the tighter
    one decides).

    Raises:
        ConfigurationError: naming the offending item, for empty text or any item outside
            the grammar (see the module docstring) or out of range.
        ConfigurationTypeError: for a value that is neither a string nor a ``Limit``.
    """
    parsed: list[Limit] = []
    for part in _parts(limits):
        if isinstance(part, Limit):
            parsed.append(part)
        else:
            parsed.extend(_parse_text(part))
    if not parsed:
        raise ConfigurationError(f"limits: no limit given in {limits!r}")
    return list(dict.fromkeys(parsed))


def _parts(limits: LimitSpec) -> list[Union[str, Limit]]:
    if isinstance(limits, (str, Limit)):
        return [limits]
    if isinstance(limits, (bytes, bytearray, Mapping)) or not isinstance(limits, Iterable):
        raise ConfigurationTypeError(
            f"limits must be a str, a Limit or an iterable of them, got {type(limits).__name__}")
    parts = list(limits)
    for part in parts:
        if not isinstance(part, (str, Limit)):
            raise ConfigurationTypeError(
                f"limits: each item must be a str or a Limit, got {type(part).__name__}")
    return parts


def _parse_text(text: str) -> list[Limit]:
    if not text.strip():
        raise ConfigurationError(f"limits: empty limit string {_show(text)}")
    return [_parse_item(item, text) for item in _SEPARATORS.split(text)]


def _show(text: str, width: int = 80) -> str:
    """``repr(text)``, cut to about ``width`` characters so a huge input stays readable."""
    return repr(text) if len(text) <= width else repr(text[:width]) + f"... ({len(text)} chars)"


def _parse_item(raw: str, text: str) -> Limit:
    item = raw.strip()

    def bad(reason: str) -> ConfigurationError:
        where = _show(item) if item == text.strip() else f"{_show(item)} in {_show(text)}"
        return ConfigurationError(f"limits: bad limit {where}: {reason}")

    if not item:
        raise bad("empty item (a separator with nothing around it)")
    match = _ITEM.fullmatch(item)
    if match is None:
        raise bad(_GRAMMAR)
    amount_text, multiplier_text, unit_text = match.group("amount", "multiplier", "unit")
    if not amount_text:
        raise bad("missing amount before the unit")
    if not _DIGITS.fullmatch(amount_text) or len(amount_text.lstrip("0")) > _MAX_AMOUNT_DIGITS:
        raise bad(f"amount {_show(amount_text)} is not a positive integer <= 2**52")
    amount = int(amount_text)
    if not 1 <= amount <= MAX_AMOUNT:
        raise bad(f"amount must be a positive integer <= 2**52, got {amount}")
    if not unit_text:
        raise bad("missing unit (second, minute, hour, day, month or year)")
    unit = unit_text.lower()
    if unit not in _UNITS and unit.endswith("s"):
        unit = unit[:-1]
    if unit not in _UNITS:
        raise bad(f"unknown unit {_show(unit_text)} (second, minute, hour, day, month or year)")
    window = float(_UNITS[unit])
    if multiplier_text:
        if not _MULTIPLIER.fullmatch(multiplier_text) or \
                len(multiplier_text) > _MAX_MULTIPLIER_CHARS:
            raise bad(f"window multiplier {_show(multiplier_text)} is not a number")
        # Whole multipliers multiply exactly as ints; fractional ones only come with
        # seconds in canonical text, where the product is the float itself.
        try:
            if "." in multiplier_text:
                window = float(multiplier_text) * _UNITS[unit]
            else:
                window = float(int(multiplier_text) * _UNITS[unit])
        except OverflowError:
            window = math.inf
        if not math.isfinite(window) or window <= 0:
            raise bad(f"window must be a finite number of seconds > 0, got "
                      f"{_show(multiplier_text)} {unit}s")
    return Limit(amount, window)
