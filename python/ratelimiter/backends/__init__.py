"""Where limiter state lives: process memory, a SQLite file, or Redis."""

from .base import BaseBackend
from .memory import MemoryBackend
from .sqlite_backend import SQLiteBackend

__all__ = ["BaseBackend", "MemoryBackend", "SQLiteBackend"]
