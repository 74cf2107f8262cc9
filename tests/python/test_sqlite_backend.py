"""SQLiteBackend: exact across threads and processes, same decisions as memory, crash-safe,
clear errors, bounded file. Real files in tmp_path; a fake clock wherever time matters."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

import ratelimiter
from ratelimiter.backends import SQLiteBackend
from ratelimiter.exceptions import BackendError, ConfigurationError

LIMIT, WINDOW, ATTEMPTS = 100, 60.0, 20_000

# Imported by every child process: the seven limiters, exact at one instant (fixed clock).
_CHILD_PRELUDE = textwrap.dedent(
    """
    import json, sys, threading
    import ratelimiter
    from ratelimiter.backends import SQLiteBackend
    CLASSES = [ratelimiter.FixedWindowRateLimiter, ratelimiter.SlidingWindowRateLimiter,
               ratelimiter.SlidingWindowCounterRateLimiter, ratelimiter.TokenBucketRateLimiter,
               ratelimiter.LeakyBucketRateLimiter, ratelimiter.AdaptiveRateLimiter,
               ratelimiter.GCRARateLimiter]
    def make(cls, backend):
        extra = {"burst_multiplier": 1.0} if cls is ratelimiter.AdaptiveRateLimiter else {}
        return cls(backend, 100, 60.0, clock=lambda: 1000.0, **extra)
    """
)


def _child_env() -> dict[str, str]:
    # The test directory first, as in this process, so children import the same package.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _count_admitted(limiters: list[Any], threads: int, attempts: int) -> list[int]:
    """`threads` threads share `attempts` per limiter; returns admitted per limiter."""
    counts = [0] * len(limiters)
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        mine = [0] * len(limiters)
        for i, limiter in enumerate(limiters):
            for _ in range(attempts // threads):
                mine[i] += limiter.is_allowed("hot").allowed
        with lock:
            for i, n in enumerate(mine):
                counts[i] += n

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return counts


# ---- exactness --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.subprocess
def test_four_processes_of_four_threads_admit_exactly_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "rl.db")
    SQLiteBackend(path).close()  # create the file and its tables once
    code = _CHILD_PRELUDE + textwrap.dedent(
        """
        backend = SQLiteBackend(sys.argv[1])
        limiters = [make(cls, backend) for cls in CLASSES]
        counts = [0] * 7
        lock = threading.Lock()
        def work():
            mine = [sum(l.is_allowed("hot").allowed for _ in range(int(sys.argv[2])))
                    for l in limiters]
            with lock:
                for i, n in enumerate(mine):
                    counts[i] += n
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(json.dumps(counts))
        """
    )
    per_thread = ATTEMPTS // 16
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, path, str(per_thread)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        for _ in range(4)
    ]
    totals = [0] * 7
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        for i, n in enumerate(json.loads(out)):
            totals[i] += n
    assert totals == [LIMIT] * 7


def test_memory_database_is_shared_by_every_thread() -> None:
    backend = SQLiteBackend()  # ":memory:"
    limiters = [make_exact(cls, backend, 50, WINDOW, clock=lambda: 1000.0) for cls in ALL_LIMITERS]
    assert _count_admitted(limiters, threads=4, attempts=400) == [50] * 7

    seen: list[Any] = []
    writer = threading.Thread(target=lambda: backend.set("from-thread", {"n": 1}))
    writer.start()
    writer.join()
    reader = threading.Thread(target=lambda: seen.append(backend.get("from-thread")))
    reader.start()
    reader.join()
    assert seen == [{"n": 1}]


# ---- crash safety, errors ---------------------------------------------------------------

_WRITER = _CHILD_PRELUDE + textwrap.dedent(
    """
    import itertools
    backend = SQLiteBackend(sys.argv[1])
    limiters = [cls(backend, 1_000_000, 60.0) for cls in CLASSES]
    print("ready", flush=True)
    for i in itertools.count():
        limiters[i % 7].is_allowed(f"key{i % 5000}")
        if i % 50 == 0:
            backend.set(f"prim{i % 300}", {"i": i}, ttl=30)
            backend.zadd("log", float(i), str(i))
    """
)


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigkill_during_writes_never_corrupts_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "rl.db")
    rng = random.Random(7)
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # And the file is still usable: recovery of the WAL is SQLite's job on the next open.
    with SQLiteBackend(path) as backend:
        limiter = ratelimiter.FixedWindowRateLimiter(backend, 1, 60.0)
        assert limiter.is_allowed("after-crashes").allowed
        assert not limiter.is_allowed("after-crashes").allowed


def _run_unprivileged(code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a child that file permissions apply to (root drops its override)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_child_env())


_OPEN_AND_DECIDE = textwrap.dedent(
    """
    import sys
    import ratelimiter
    from ratelimiter.backends import SQLiteBackend
    try:
        backend = SQLiteBackend(sys.argv[1])
        ratelimiter.FixedWindowRateLimiter(backend, 5, 60.0).is_allowed("k")
    except ratelimiter.BackendError as e:
        print("BackendError:", e)
    else:
        print("no error")
    """
)


def test_read_only_file_or_directory_gives_backend_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    existing = directory / "rl.db"
    with SQLiteBackend(existing) as backend:
        ratelimiter.FixedWindowRateLimiter(backend, 5, 60.0).is_allowed("k")
    try:
        existing.chmod(0o444)  # read-only file in a writable directory
        out = _run_unprivileged(_OPEN_AND_DECIDE.replace("sys.argv[1]", repr(str(existing))))
        assert out.stdout.startswith("BackendError:"), out.stderr
        assert "is read-only" in out.stdout and str(existing) in out.stdout

        existing.chmod(0o644)
        directory.chmod(0o555)  # writable file, read-only directory (no -wal/-shm possible)
        for path in (existing, directory / "new.db"):
            out = _run_unprivileged(_OPEN_AND_DECIDE.replace("sys.argv[1]", repr(str(path))))
            assert out.stdout.startswith("BackendError:"), out.stderr
            assert str(path) in out.stdout
            assert "writable" in out.stdout
    finally:
        directory.chmod(0o755)
        existing.chmod(0o644)


@pytest.mark.subprocess
def test_lock_held_past_busy_timeout_raises_quickly(tmp_path: Path) -> None:
    path = tmp_path / "rl.db"
    backend = SQLiteBackend(path, busy_timeout=0.2)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 5, 60.0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    outcome: list[BaseException] = []

    def decide() -> None:
        try:
            limiter.is_allowed("k")
        except BaseException as e:  # noqa: BLE001 - recorded and checked below
            outcome.append(e)

    # Two threads: the second queues behind the first inside the process; both must end.
    callers = [threading.Thread(target=decide) for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=30)  # liveness guard only: a hang fails here, not a slow call
    assert not any(t.is_alive() for t in callers)
    assert len(outcome) == 2
    assert all(isinstance(e, BackendError) and "is locked" in str(e) for e in outcome)
    assert limiter.peek("k").allowed  # reads still work beside the writer (WAL)
    holder.execute("COMMIT")
    holder.close()
    assert limiter.is_allowed("k").allowed


# ---- bounded file -------------------------------------------------------------------------


@pytest.mark.slow
def test_expired_rows_are_pruned_after_ten_thousand_keys(tmp_path: Path) -> None:
    clock = FakeClock(1_000.0)
    backend = SQLiteBackend(tmp_path / "rl.db")
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 1_000_000, 10.0, clock=clock)
    for result in limiter.is_allowed_many([f"k{i}" for i in range(10_000)]):
        assert result.allowed
    assert len(backend) == 10_000
    clock.advance(60.0)  # every window has passed
    # Pruning rides on writes: two full sweeps' worth (2 x 21 passes x 64 writes).
    for i in range(2 * 21 * 64):
        limiter.is_allowed(f"live{i % 20}")
    assert len(backend) == 20
    clock.advance(60.0)
    assert backend.purge_expired(clock()) == 20
    assert len(backend) == 0


# ---- primitives and API ---------------------------------------------------------------------


def test_primitives_are_shared_by_connections_and_purged(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite-only: the primitives' rows are in the file (the semantics every backend shares
    are in test_backend_contract.py)."""
    now = [1_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    backend = SQLiteBackend(tmp_path / "rl.db")
    backend.set("v", {"a": [1, 2.5, "x"], "b": None})
    backend.set("t", "temp", ttl=5)
    backend.incr("n")
    backend.expire("n", 10)
    assert SQLiteBackend(tmp_path / "rl.db").get("v") == {"a": [1, 2.5, "x"], "b": None}
    now[0] += 10
    # "t" and "n" read as absent once expired; their rows go at the next prune.
    assert backend.purge_expired() == 2


def test_is_a_base_backend_with_context_manager_and_ping(tmp_path: Path) -> None:
    assert issubclass(SQLiteBackend, ratelimiter.BaseBackend)
    with SQLiteBackend(str(tmp_path / "rl.db"), wal_mode=False, synchronous="full") as backend:
        assert backend.ping()
        assert backend.db_path == str(tmp_path / "rl.db")
    assert not backend.ping()
    with pytest.raises(BackendError, match="closed"):
        backend.get("k")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"busy_timeout": -1}, "busy_timeout"),
        ({"busy_timeout": float("nan")}, "busy_timeout"),
        ({"synchronous": "sometimes"}, "synchronous"),
        ({"on_error": "ignore"}, "on_error must be 'raise', 'allow' or 'deny', got 'ignore'"),
        ({"on_error": None}, "on_error must be 'raise', 'allow' or 'deny', got None"),
        ({"wal_mode": "yes"}, "wal_mode"),
        ({"db_path": 3}, "db_path"),
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SQLiteBackend(**kwargs)


def test_wal_mode_is_on_for_files(tmp_path: Path) -> None:
    SQLiteBackend(tmp_path / "rl.db")
    with sqlite3.connect(tmp_path / "rl.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
