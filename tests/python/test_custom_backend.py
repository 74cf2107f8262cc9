"""Every algorithm runs on a user's own BaseBackend subclass, through get/set."""

from __future__ import annotations

import threading

import pytest
from conftest import ALL_LIMITERS, DictBackend, FakeClock, make_exact

from ratelimiter import BackendError


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_state_stored_with_ttl_and_reset_deletes(cls: type, clock: FakeClock) -> None:
    backend = DictBackend()
    limiter = cls(backend, 5, 10.0, clock=clock, key_prefix="app:")
    limiter.is_allowed("user")
    (stored_key,) = backend.data
    assert stored_key.endswith(":app:user")
    assert all(isinstance(v, float) for v in backend.data[stored_key])
    ttl = backend.ttls[stored_key]
    assert ttl is not None and 1 <= ttl <= 2 * 5 * 10.0 + 10.0  # adaptive: sensor window
    limiter.reset("user")
    assert backend.data == {}


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_threads_on_custom_backend_admit_exactly_limit(cls: type) -> None:
    limiter = make_exact(cls, DictBackend(), 50, 60.0, clock=lambda: 1_000.0)
    counts = [0] * 4

    def hammer(slot: int) -> None:
        for _ in range(200):
            counts[slot] += limiter.is_allowed("shared").allowed

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 50


def test_corrupt_state_is_a_backend_error(clock: FakeClock) -> None:
    backend = DictBackend()
    limiter = ALL_LIMITERS[3](backend, 5, 10.0, clock=clock)
    backend.data["token_bucket:k"] = ["not", "numbers"]
    with pytest.raises(BackendError, match="corrupt"):
        limiter.is_allowed("k")
    backend.data["token_bucket:k"] = [1.0]
    with pytest.raises(BackendError, match="corrupt"):
        limiter.is_allowed("k")
