"""Where limiter state lives: process memory, a SQLite file, or Redis."""

from .base import BaseBackend
from .memory import MemoryBackend

__all__ = ["BaseBackend", "MemoryBackend"]
