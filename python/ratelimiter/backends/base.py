"""The backend interface: storage primitives for custom stores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Optional

__all__ = ["BaseBackend"]


class BaseBackend(ABC):
    """Storage primitives a custom backend implements.

    Every limiter runs on a subclass: the C++ step function of the algorithm reads a key's
    state with :meth:`get`, decides, and writes it back with :meth:`set` (a list of floats,
    with a TTL after which the state is fresh again). Decisions on one backend object are
    atomic within this process (a lock per backend object); they are not atomic across
    processes unless the store itself is private to one process. Use ``SQLiteBackend`` or
    ``RedisBackend`` for state shared between processes.
    """

    #: Whether a decision on this backend never waits on I/O (state in process memory,
    #: decided in microseconds): asyncio code then decides on the event loop rather than
    #: paying a thread hop. Only the memory store says so.
    never_blocks: ClassVar[bool] = False

    @abstractmethod
    def get(self, key: str) -> Optional[Any]:
        """Return the value stored at ``key``, or ``None``."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """Store ``value`` (JSON-compatible) at ``key``, expiring after ``ttl`` seconds."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    @abstractmethod
    def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer at ``key`` (0 if absent); return the new value."""

    @abstractmethod
    def expire(self, key: str, ttl: float) -> None:
        """Make ``key`` expire after ``ttl`` seconds."""

    @abstractmethod
    def zadd(self, key: str, score: float, member: str) -> None:
        """Add ``member`` with ``score`` to the sorted set at ``key``."""

    @abstractmethod
    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        """Remove members with ``min_score <= score <= max_score``; return how many."""

    @abstractmethod
    def zcard(self, key: str) -> int:
        """Number of members in the sorted set at ``key``."""

    @abstractmethod
    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        """Members with ``min_score <= score <= max_score`` as ``(member, score)``, by score."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources held by the backend."""

    def ping(self) -> bool:
        """Whether the backend is reachable."""
        return True
