"""The throughput controls, pure: AIMD fed success/429/dop-hint events, the fair queue and limiter
(turns per workspace counted, never timed), and the waves and chunks `write_many` cuts writes into."""

from __future__ import annotations

import threading

import pytest

from shared.dataverse.chunking import even_chunk_size, write_waves
from shared.dataverse.throttling import (
    DEFAULT_DOP,
    AdaptiveLimit,
    FairLimiter,
    FairQueue,
    Grant,
    current_share,
    fair_share,
    parse_dop_hint,
)


def _succeed(limit: AdaptiveLimit, times: int, hint: int | None = None) -> None:
    for _ in range(times):
        limit.on_success(hint)


def test_aimd_starts_with_one_probe_and_grows_additively_to_the_default_without_a_hint() -> None:
    limit = AdaptiveLimit(16)
    assert (limit.allowed, limit.ceiling) == (1, DEFAULT_DOP)
    seen = []
    for _ in range(8):
        limit.on_success(None)
        seen.append(limit.allowed)
    # +1/limit per success (about +1 per round of successes): 1 → 2 → 2.5 → 2.9 → 3.2 → 3.6 → 3.8 → 4.
    assert seen == [2, 2, 2, 3, 3, 3, 4, 4]
    _succeed(limit, 50)
    assert limit.allowed == DEFAULT_DOP


def test_aimd_follows_the_dop_hint_up_and_down_within_the_configured_maximum() -> None:
    limit = AdaptiveLimit(8)
    _succeed(limit, 100, hint=6)
    assert (limit.ceiling, limit.allowed) == (6, 6)
    _succeed(limit, 1, hint=50)  # the hint never lifts it above max_limit...
    assert limit.ceiling == 8
    _succeed(limit, 100)  # ...a response without the header keeps the last hint
    assert limit.allowed == 8
    limit.on_success(2)  # a lower hint takes effect at once
    assert limit.allowed == 2


def test_aimd_halves_on_429_once_per_round() -> None:
    limit = AdaptiveLimit(16)
    _succeed(limit, 100, hint=8)
    assert limit.allowed == 8
    granted_in = limit.epoch
    assert limit.on_throttled(granted_in)
    assert limit.allowed == 4
    # Other 429s answering requests granted in the same round do not halve it again.
    assert not limit.on_throttled(granted_in)
    assert not limit.on_throttled(granted_in)
    assert limit.allowed == 4
    # A 429 on a request granted after the decrease does.
    assert limit.on_throttled(limit.epoch)
    assert limit.allowed == 2
    assert limit.on_throttled(limit.epoch) and limit.on_throttled(limit.epoch)
    assert limit.allowed == 1  # never below one request
    _succeed(limit, 1)
    assert limit.allowed == 2  # and additive increase again from there


def test_aimd_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        AdaptiveLimit(0)
    with pytest.raises(ValueError):
        AdaptiveLimit(4, decrease=1.0)


def test_dop_hint_parsing() -> None:
    assert [parse_dop_hint(v) for v in ("4", " 12 ", "0", "-3", "many", "", None)] == [4, 12, None, None, None,
                                                                                       None, None]


def test_fair_queue_round_robin_across_keys_fifo_within_one() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ("a1", "a2", "a3", "a4"):
        queue.push("a", item)
    queue.push("b", "b1")
    queue.push("c", "c1")
    queue.push("b", "b2")
    order = [queue.pop() for _ in range(len(queue))]
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    assert queue.pop() is None
    queue.push("x", "x1")
    assert queue.remove("x", "x1") and not queue.remove("x", "x1") and len(queue) == 0


def test_fair_limiter_grants_in_turns_and_feeds_the_limit() -> None:
    limiter = FairLimiter(AdaptiveLimit(4))
    first = limiter.acquire("a", timeout=0)
    assert first is not None and limiter.in_flight == 1
    assert limiter.acquire("a", timeout=0) is None  # the probe: one at a time until a success
    assert limiter.waiting == 0  # a waiter that gave up leaves the queue
    limiter.release(first, 200, 3)
    grants = [limiter.acquire("a", timeout=0) for _ in range(3)]
    assert [g is not None for g in grants] == [True, True, False]  # limit 2 after one success
    for grant in grants:
        if grant is not None:
            limiter.release(grant, 429)
    assert limiter.cap == 1  # two 429s from one round: halved once
    assert limiter.grants["a"] == 3


def test_fair_limiter_shares_turns_between_workspaces_under_contention() -> None:
    """Three workspaces with 6, 6 and 3 requests waiting for one slot: the turns alternate between them
    (counted, in the order granted), and none waits behind the whole of another's queue."""
    limiter = FairLimiter(AdaptiveLimit(1))
    holder = limiter.acquire("holder")
    assert holder is not None
    order: list[str] = []
    lock = threading.Lock()

    def request(key: str) -> None:
        grant = limiter.acquire(key, timeout=60)
        assert grant is not None
        with lock:
            order.append(key)
        limiter.release(grant, 200)

    wanted = {"ws-a": 6, "ws-b": 6, "ws-c": 3}
    threads = [threading.Thread(target=request, args=(key,)) for key, n in wanted.items() for _ in range(n)]
    for thread in threads:
        thread.start()
    with limiter._cond:  # every request queued before the slot frees (no sleeping, no timing)
        limiter._cond.wait_for(lambda: len(limiter._waiting) == sum(wanted.values()), timeout=60)
    limiter.release(holder, 200)
    for thread in threads:
        thread.join(60)
    assert sorted(order) == sorted(k for k, n in wanted.items() for _ in range(n))
    # While all three wait, every round of three turns serves each of them once.
    rounds = [set(order[i : i + 3]) for i in range(0, 9, 3)]
    assert rounds == [set(wanted)] * 3
    # Then the two with more to do alternate.
    assert set(order[9:11]) == set(order[11:13]) == set(order[13:15]) == {"ws-a", "ws-b"}
    assert {k: limiter.grants[k] for k in wanted} == wanted


def test_share_key_is_a_context_scope() -> None:
    assert current_share() == ""
    with fair_share("ws-1"):
        assert current_share() == "ws-1"
        with fair_share("ws-2"):
            assert current_share() == "ws-2"
        assert current_share() == "ws-1"
    assert current_share() == ""


def test_grant_identity() -> None:
    assert Grant("a") != Grant("a")  # two requests of one key are two waiters


def test_write_waves_keep_one_records_writes_apart_and_in_order() -> None:
    ids = ["A", "b", None, "a", "c", None, "A", "b"]
    waves = write_waves(ids)
    assert waves == [[0, 1, 2, 4, 5], [3, 7], [6]]
    for wave in waves:
        named = [str(ids[i]).lower() for i in wave if ids[i]]
        assert len(named) == len(set(named))
    assert write_waves([]) == []


@pytest.mark.parametrize(
    ("count", "parallel", "expected"),
    [(100, 4, 25), (100, 1, 100), (30, 4, 10), (5, 4, 10), (5000, 4, 1000), (0, 4, 10)],
)
def test_even_chunk_size(count: int, parallel: int, expected: int) -> None:
    assert even_chunk_size(count, parallel, smallest=10, largest=1000) == expected
