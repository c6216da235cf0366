"""Replica choice: prefix affinity, bounded load, and a dead replica drained, probed and readmitted."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from pipeline.routing import ReplicaRouter

URLS = [f"http://replica-{i}:8000/v1" for i in range(4)]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_same_prefix_same_replica_and_keys_spread_over_replicas() -> None:
    router = ReplicaRouter(URLS)
    homes = {}
    for k in range(400):
        key = f"system-prompt-{k}"
        first = router.pick(key)
        router.release(first, "ok")
        again = router.pick(key)
        router.release(again, "ok")
        assert again is first  # an idle cluster always sends a prefix home
        homes[key] = first.url
    spread = Counter(homes.values())
    assert set(spread) == set(URLS)
    assert min(spread.values()) >= 400 / len(URLS) / 3  # consistent hashing with vnodes is roughly even


def test_adding_a_replica_moves_only_a_share_of_keys() -> None:
    keys = [f"prefix-{k}" for k in range(1000)]

    def homes(urls: list[str]) -> dict[str, str]:
        router = ReplicaRouter(urls)
        out = {}
        for key in keys:
            r = router.pick(key)
            router.release(r, "ok")
            out[key] = r.url
        return out

    before, after = homes(URLS[:3]), homes(URLS)
    moved = sum(before[k] != after[k] for k in keys)
    assert all(after[k] == URLS[3] for k in keys if before[k] != after[k])  # keys only move to the newcomer
    assert moved < len(keys) / 2


def test_a_hot_prefix_spills_over_within_the_load_bound() -> None:
    eps = 0.25
    router = ReplicaRouter(URLS, eps=eps)
    held = [router.pick("one-very-popular-system-prompt") for _ in range(200)]
    loads = [r.in_flight for r in router.replicas]
    assert sum(loads) == 200
    assert max(loads) <= math.ceil((1 + eps) * 200 / len(URLS))
    home = held[0]
    assert home.in_flight == max(loads)  # the home replica is filled first
    for r in held:
        router.release(r, "ok")
    assert all(r.in_flight == 0 for r in router.replicas)


def test_requests_without_key_go_to_the_least_loaded() -> None:
    router = ReplicaRouter(URLS[:3])
    held = [router.pick() for _ in range(9)]
    assert [r.in_flight for r in router.replicas] == [3, 3, 3]
    for r in held:
        router.release(r, "ok")


def test_dead_replica_is_drained_probed_after_backoff_and_readmitted() -> None:
    clock = Clock()
    router = ReplicaRouter(URLS[:2], failure_threshold=3, probe_backoff_s=1.0, max_probe_backoff_s=4.0, clock=clock)
    bad, good = router.replicas
    for _ in range(2):
        router.release(router._reserve(bad), "connection")
    assert bad.up  # two failures: not yet
    straggler = router._reserve(bad)  # in flight while the replica goes down
    router.release(router._reserve(bad), "timeout")
    assert not bad.up

    # Drained: nothing new goes there, whatever the key, while its in-flight request may finish.
    picks = [router.pick(f"key-{k}") for k in range(50)]
    assert all(p is good for p in picks)
    for p in picks:
        router.release(p, "ok")
    assert bad.in_flight == 1
    router.release(straggler, "connection")

    # After the backoff exactly one request probes it; a failed probe doubles the backoff.
    clock.t += 1.0
    probe = router.pick("key-0")
    assert probe is bad and bad.probing
    assert router.pick("key-1") is good  # only one probe at a time
    router.release(router.replicas[1], "ok")
    router.release(probe, "connection")
    assert not bad.up and bad.backoff_s == 2.0
    clock.t += 1.0
    assert router.pick("key-2") is good
    router.release(good, "ok")
    clock.t += 1.0
    probe = router.pick("key-3")
    assert probe is bad
    router.release(probe, "ok")  # it answered: back in rotation
    assert bad.up and bad.consecutive_failures == 0
    assert {s["state"] for s in router.snapshot()} == {"up"}


def test_http_errors_do_not_count_against_health() -> None:
    router = ReplicaRouter(URLS[:2], failure_threshold=2)
    r = router.replicas[0]
    for outcome in ("http_5xx", "http_429", "malformed", "http_5xx"):
        router.release(router._reserve(r), outcome)
    assert r.up


def test_avoid_skips_the_replica_a_retry_failed_on() -> None:
    router = ReplicaRouter(URLS[:2])
    home = router.pick("k")
    router.release(home, "connection")
    other = router.pick("k", avoid=home)
    assert other is not home
    router.release(other, "ok")
    single = ReplicaRouter(URLS[:1])
    only = single.pick("k")
    single.release(only, "connection")
    assert single.pick("k", avoid=only) is only  # nowhere else to go


def test_all_down_still_tries_the_one_due_back_first() -> None:
    clock = Clock()
    router = ReplicaRouter(URLS[:2], failure_threshold=1, probe_backoff_s=5.0, clock=clock)
    a, b = router.replicas
    router.release(router._reserve(a), "connection")
    clock.t += 1.0
    router.release(router._reserve(b), "connection")
    assert router.pick("k") is a


def test_router_rejects_bad_url_lists() -> None:
    with pytest.raises(ValueError):
        ReplicaRouter([])
    with pytest.raises(ValueError):
        ReplicaRouter([URLS[0], URLS[0]])
