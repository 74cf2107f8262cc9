"""The sliding-window log on SQLite stores one row per entry: a decision
costs O(log n), not a rewrite of a blob of `limit` entries. Shown here: the same decisions as
the memory store at limit 100,000 with epoch-scale times, bounded writes per decision, reset,
bounded pruning of idle logs, files written in the old blob layout, and exactness across
processes. Real SQLite files; a fake clock throughout."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock

from ratelimiter import DynamicConfig, SlidingWindowRateLimiter
from ratelimiter.backends import MemoryBackend, SQLiteBackend
from ratelimiter.exceptions import BackendError

EPOCH = 1_700_000_000.0
HEAD_ALGO = 101  # rl_state.algo of a log head (SqliteStore::kSlidingLogAlgo)
BLOB_ALGO = 1  # rl_state.algo of the old blob layout (SlidingWindow::id)
PRUNE_EVERY, PRUNE_BATCH = 64, 500  # SqliteStore::kPruneEvery / kPruneBatch
INLINE = 64  # SqliteStore::kLogInlineEntries: a longer log is stored as rows


def _query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _log_id(path: Path, key: str) -> int:
    ((state,),) = _query(path, "SELECT state FROM rl_state WHERE algo = ? AND key = ?",
                         HEAD_ALGO, key)
    return int(struct.unpack_from("=d", state)[0])


def _rows_of(path: Path, log_id: int) -> int:
    return _query(path, "SELECT count(*) FROM rl_log WHERE log_id = ?", log_id)[0][0]


def _write_blob(path: Path, key: str, entries: list[tuple[float, int]], window: float) -> None:
    """A sliding log in the layout of files written before rows: one blob of doubles."""
    blob = struct.pack(f"={2 * len(entries)}d", *(x for t, n in entries for x in (t, float(n))))
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT OR REPLACE INTO rl_state VALUES(?, ?, ?, ?)",
                   (BLOB_ALGO, key, blob, entries[-1][0] + window if entries else 0.0))
    db.close()


def _pair(
    path: Path, limit: int, window: float, clock: FakeClock, **kwargs: Any
) -> tuple[Any, Any]:
    """The same limiter on a SQLite file and on memory."""
    backend = SQLiteBackend(path)
    return (SlidingWindowRateLimiter(backend, limit, window, clock=clock, **kwargs),
            SlidingWindowRateLimiter(MemoryBackend(), limit, window, clock=clock, **kwargs))


# ---- same decisions as memory -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_random_trace_at_limit_100000_matches_memory(seed: int, tmp_path: Path) -> None:
    """Multi-unit costs fill a 100,000 log in few steps, so rejections (retry_after found by
    the cumulative count), expiry at ulp-sized steps, waits of exactly retry_after, idle gaps
    longer than the window, peeks, resets and costs above the limit are all exercised."""
    clock = FakeClock(EPOCH)
    on_sqlite, on_memory = _pair(tmp_path / "rl.db", 100_000, 60.0, clock)
    rng = random.Random(f"sliding-log-{seed}")
    retry = 0.0
    for step in range(2_500):
        clock.advance(rng.choice([0.0, 0.0, 2.0**-22, 1e-3, rng.uniform(0.0, 2.0),
                                  rng.uniform(0.0, 30.0), 60.0, retry, rng.uniform(60.0, 200.0)
                                  if rng.random() < 0.05 else 0.5]))
        key = f"user{rng.randrange(3)}"
        action = rng.random()
        if action < 0.01:
            on_sqlite.reset(key)
            on_memory.reset(key)
            continue
        if action < 0.1:
            a, b = on_sqlite.peek(key), on_memory.peek(key)
        else:
            cost = rng.choice([1, 1, 1, 2, 7, 999, 20_000, 45_000, 100_000, 100_001])
            a, b = on_sqlite.is_allowed(key, cost), on_memory.is_allowed(key, cost)
        assert a == b, (step, key)
        if not a.allowed and a.retry_after != float("inf"):
            retry = a.retry_after


def test_limit_and_window_changes_match_memory(tmp_path: Path) -> None:
    """Entries an earlier step popped stay popped when the window then grows, although their
    rows may not be deleted yet (a decision deletes at most a few popped rows)."""
    clock = FakeClock(EPOCH)
    cfg = DynamicConfig(1_000, 10.0)
    on_sqlite, on_memory = _pair(tmp_path / "rl.db", 1_000, 10.0, clock, config_provider=cfg)
    rng = random.Random("changes")
    for step in range(3_000):
        # Steps shorter than the smallest window: the key never expires in either store, so
        # both keep it whatever their pruning schedules.
        clock.advance(rng.choice([0.0, 0.01, 0.1, rng.uniform(0.0, 4.0)]))
        if rng.random() < 0.02:
            cfg.update(limit=rng.choice([10, 200, 1_000, 5_000]),
                       window=rng.choice([5.0, 10.0, 30.0, 100.0]))
        cost = rng.choice([1, 1, 2, 5, 50])
        a, b = on_sqlite.is_allowed("k", cost), on_memory.is_allowed("k", cost)
        assert a == b, step


def test_window_growth_after_a_pop_does_not_revive_popped_entries(tmp_path: Path) -> None:
    clock = FakeClock(EPOCH)
    path = tmp_path / "rl.db"
    cfg = DynamicConfig(200, 20.0)
    on_sqlite, on_memory = _pair(path, 200, 20.0, clock, config_provider=cfg)
    for _ in range(100):  # 100 entries (rows), one per 0.1 s
        assert on_sqlite.is_allowed("k") == on_memory.is_allowed("k")
        clock.advance(0.1)
    clock.advance(18.0)  # the first ~80 have expired; this decision pops them
    assert on_sqlite.is_allowed("k") == on_memory.is_allowed("k")
    assert _rows_of(path, _log_id(path, "k")) > 90  # popped, but their rows not all deleted
    cfg.update(window=100.0)  # they would be inside a 100 s window
    a, b = on_sqlite.peek("k"), on_memory.peek("k")
    assert a == b
    assert a.metadata["current_count"] < 30


def test_cumulative_count_renumbering_keeps_decisions_exact(tmp_path: Path) -> None:
    """Rows carry the log's cumulative count, kept at most 2**53 (exact as a double) by
    renumbering them: each cycle admits ~2**52 units, so it happens every other cycle."""
    clock = FakeClock(EPOCH)
    path = tmp_path / "rl.db"
    on_sqlite, on_memory = _pair(path, 2**52, 4.0, clock)
    admitted = 0
    for cycle in range(12):
        # 100 unit entries (rows), one nearly filling the window, one rejected (retry_after
        # found by cumulative count); the next cycle starts before the log can expire.
        for cost in [1] * 100 + [2**52 - 1_000, 2**51]:
            clock.advance(0.001)
            a, b = on_sqlite.is_allowed("k", cost), on_memory.is_allowed("k", cost)
            assert a == b, (cycle, cost)
            admitted += cost if a.allowed else 0
        assert not a.allowed and a.retry_after > 0
        assert _query(path, "SELECT algo FROM rl_state") == [(HEAD_ALGO,)]
        clock.advance(3.95)
    assert admitted > 5 * 2**53
    assert _query(path, "SELECT max(cum) FROM rl_log")[0][0] <= 2**53


# ---- cost per decision --------------------------------------------------------------------


def test_a_decision_on_a_full_100000_log_writes_a_few_pages(tmp_path: Path) -> None:
    """The regression: a decision used to rewrite the whole log (1.6 MB at 100,000 entries)
    into the WAL. Counted in WAL bytes, not time: ten decisions on a full log now append a
    few pages each."""
    path = tmp_path / "rl.db"
    limit, tick = 100_000, 1.0 / 1024
    window = limit * tick
    SQLiteBackend(path).close()
    _write_blob(path, "k", [(EPOCH + i * tick, 1) for i in range(limit)], window)
    clock = FakeClock(EPOCH + limit * tick)
    backend = SQLiteBackend(path)
    limiter = SlidingWindowRateLimiter(backend, limit, window, clock=clock)
    assert limiter.is_allowed("k").remaining == 0  # converts the blob; the log stays full
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert os.path.getsize(f"{path}-wal") == 0
    for _ in range(10):
        clock.advance(tick)  # one entry expires, one is added
        result = limiter.is_allowed("k")
        assert result.allowed and result.remaining == 0
    frames = (os.path.getsize(f"{path}-wal") - 32) // (page + 24)
    assert frames <= 10 * 8, frames  # measured: 50 (it was over 400 per decision)
    assert _rows_of(path, _log_id(path, "k")) <= limit + 10
    backend.close()


# ---- reset, pruning -----------------------------------------------------------------------


def test_reset_deletes_the_key_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "rl.db"
    clock = FakeClock(EPOCH)
    on_sqlite, on_memory = _pair(path, 10_000, 60.0, clock)
    for _ in range(300):
        clock.advance(0.01)
        on_sqlite.is_allowed("a")
        on_sqlite.is_allowed("b")
    a_id, b_id = _log_id(path, "a"), _log_id(path, "b")
    assert (_rows_of(path, a_id), _rows_of(path, b_id)) == (300, 300)
    on_sqlite.reset("a")
    assert (_rows_of(path, a_id), _rows_of(path, b_id)) == (0, 300)
    assert _query(path, "SELECT count(*) FROM rl_state WHERE key = 'a'") == [(0,)]
    assert on_sqlite.is_allowed("a") == on_memory.is_allowed("a")  # fresh: a short blob
    assert _query(path, "SELECT algo FROM rl_state WHERE key = 'a'") == [(BLOB_ALGO,)]


def test_idle_logs_are_pruned_at_most_a_batch_of_rows_per_pass(tmp_path: Path) -> None:
    path = tmp_path / "rl.db"
    clock = FakeClock(EPOCH)
    backend = SQLiteBackend(path)
    limiter = SlidingWindowRateLimiter(backend, 10_000, 10.0, clock=clock)
    for _ in range(2_000):  # 2,000 writes: passes ran, nothing had expired
        clock.advance(0.001)
        assert limiter.is_allowed("idle").allowed
    idle = _log_id(path, "idle")
    assert _rows_of(path, idle) == 2_000
    clock.advance(60.0)
    # The 48th write of "busy" is write 2,048: a pass prunes the idle head, then deletes
    # PRUNE_BATCH of its rows; every later pass another batch.
    for _ in range(47):
        limiter.is_allowed("busy")
    assert _rows_of(path, idle) == 2_000
    limiter.is_allowed("busy")
    assert _query(path, "SELECT count(*) FROM rl_state WHERE key = 'idle'") == [(0,)]
    assert _rows_of(path, idle) == 2_000 - PRUNE_BATCH
    for _ in range(PRUNE_EVERY):
        limiter.is_allowed("busy")
    assert _rows_of(path, idle) == 2_000 - 2 * PRUNE_BATCH
    # "idle" starts afresh meanwhile, on a new log that the old rows never join.
    fresh = limiter.is_allowed("idle")
    assert fresh.metadata["current_count"] == 1
    clock.advance(60.0)
    assert backend.purge_expired(clock()) == 2  # the two heads; their rows go too
    assert _query(path, "SELECT count(*) FROM rl_log") == [(0,)]
    assert _query(path, "SELECT count(*) FROM rl_log_dead") == [(0,)]
    backend.close()


# ---- files in the old blob layout ---------------------------------------------------------


def test_old_long_blob_is_read_then_moved_to_rows_on_first_decision(tmp_path: Path) -> None:
    """Files from before the rows layout hold long logs as one blob: read as they are."""
    path = tmp_path / "rl.db"
    SQLiteBackend(path).close()
    entries = [(EPOCH + i * 0.25, 1 + i % 3) for i in range(100)]  # 199 units
    _write_blob(path, "k", entries, 30.0)
    clock = FakeClock(EPOCH + 27.0)
    on_sqlite, on_memory = _pair(path, 250, 30.0, clock)
    for t, n in entries:  # the same log, built by decisions
        clock.now = t
        assert on_memory.is_allowed("k", n).allowed
    clock.now = EPOCH + 27.0
    assert on_sqlite.peek("k") == on_memory.peek("k")
    assert _query(path, "SELECT algo FROM rl_state") == [(BLOB_ALGO,)]  # a peek moves nothing
    assert on_sqlite.is_allowed("k") == on_memory.is_allowed("k")
    assert _query(path, "SELECT algo FROM rl_state") == [(HEAD_ALGO,)]
    rng = random.Random("convert")
    for step in range(500):
        clock.advance(rng.choice([0.0, 0.1, 0.3, 2.0]))
        cost = rng.choice([1, 2, 30])
        assert on_sqlite.is_allowed("k", cost) == on_memory.is_allowed("k", cost), step


def test_short_logs_stay_one_blob_and_grow_into_rows(tmp_path: Path) -> None:
    path = tmp_path / "rl.db"
    clock = FakeClock(EPOCH)
    on_sqlite, on_memory = _pair(path, 1_000, 60.0, clock)
    for i in range(1, INLINE + 3):
        clock.advance(0.5)
        assert on_sqlite.is_allowed("k") == on_memory.is_allowed("k")
        algo = HEAD_ALGO if i > INLINE else BLOB_ALGO
        assert _query(path, "SELECT algo FROM rl_state") == [(algo,)], i
    assert _rows_of(path, _log_id(path, "k")) == INLINE + 2


@pytest.mark.parametrize("algo,state", [
    (BLOB_ALGO, struct.pack("=3d", 1.0, 2.0, 3.0)),
    (BLOB_ALGO, struct.pack("=4d", EPOCH, 1.0, EPOCH - 1, 1.0)),
    (HEAD_ALGO, struct.pack("=5d", 1.0, EPOCH, EPOCH, 0.0, 1.0)),
    (HEAD_ALGO, struct.pack("=5d", 1.0, EPOCH + 9, EPOCH, 1.0, 1.0)),
    (HEAD_ALGO, struct.pack("=4d", 1.0, EPOCH, EPOCH, 1.0)),
], ids=["blob-odd-length", "blob-time-back", "head-zero-units", "head-popped-past-last",
        "head-short"])
def test_corrupt_state_is_a_backend_error_and_reset_clears_it(
    algo: int, state: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "rl.db"
    SQLiteBackend(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO rl_state VALUES(?, 'bad', ?, 1e300)", (algo, state))
    db.close()
    limiter = SlidingWindowRateLimiter(SQLiteBackend(path), 5, 10.0, clock=FakeClock(EPOCH))
    with pytest.raises(BackendError, match="'bad'"):
        limiter.is_allowed("bad")
    limiter.reset("bad")
    assert limiter.is_allowed("bad").remaining == 4


# ---- processes ----------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import itertools, json, sys, threading
    from ratelimiter import SlidingWindowRateLimiter
    from ratelimiter.backends import SQLiteBackend
    backend = SQLiteBackend(sys.argv[1])
    # Every call a distinct time (interleaved between processes, so the log's clock also
    # goes back and forth): one row per admitted request. Nothing expires in the window.
    ticks, offset = itertools.count(), int(sys.argv[3]) * 1e-4
    clock = lambda: 1_700_000_000.0 + next(ticks) * 1e-3 + offset
    limiter = SlidingWindowRateLimiter(backend, 3_000, 3_600.0, clock=clock)
    admitted = [0]
    lock = threading.Lock()
    def work():
        mine = sum(limiter.is_allowed("hot", 1 + i % 3).allowed * (1 + i % 3)
                   for i in range(int(sys.argv[2])))
        with lock:
            admitted[0] += mine
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(admitted[0]))
    """
)


def test_four_processes_admit_exactly_the_limit_in_units(tmp_path: Path) -> None:
    path = str(tmp_path / "rl.db")
    SQLiteBackend(path).close()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, path, "600", str(i)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i in range(4)
    ]
    units = 0
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        units += json.loads(out)
    # 4 x 2 x 600 attempts of 1-3 units (9,600 units asked) within one window: the log admits
    # until fewer than 3 units remain, and holds exactly what was admitted.
    peek = SlidingWindowRateLimiter(SQLiteBackend(path), 3_000, 3_600.0,
                                    clock=lambda: EPOCH + 10.0).peek("hot")
    assert units == 3_000 - peek.remaining
    assert peek.metadata["current_count"] == units
    assert units >= 3_000 - 2
