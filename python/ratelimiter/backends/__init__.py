"""Where limiter state lives: process memory, a SQLite file, or Redis."""

from .async_redis_backend import AsyncRedisBackend
from .base import BaseBackend
from .memory import MemoryBackend
from .redis_backend import RedisBackend
from .sqlite_backend import SQLiteBackend

__all__ = ["AsyncRedisBackend", "BaseBackend", "MemoryBackend", "RedisBackend", "SQLiteBackend"]
