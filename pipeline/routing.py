"""Replica choice for an endpoint with several base URLs: prefix affinity, bounded load, health tracking.

Prompts that share a prefix (same system prompt + seed) should land on the same vLLM replica so its prefix
cache hits; but pure affinity lets one hot prefix overload one replica. Consistent hashing with bounded
loads (Mirrokni, Thorup & Zadimoghaddam, 2018) gives both: a key goes to its ring owner unless that owner
already carries more than (1 + eps) x the mean load, in which case it walks on to the next replica on the
ring. A replica that keeps failing at the transport level is taken out (drained: no new requests, in-flight
ones finish), then probed with a single request after a backoff that doubles while it stays down.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import xxhash

# Outcomes a router is told about. Only transport failures count against a replica's health: an HTTP error
# response proves the replica is up.
HEALTH_FAILURES: frozenset[str] = frozenset({"connection", "timeout"})


class Replica:
    """One base URL and its live state."""

    __slots__ = ("url", "index", "in_flight", "consecutive_failures", "down_until", "backoff_s", "probing", "ok", "failed")

    def __init__(self, url: str, index: int) -> None:
        self.url = url
        self.index = index
        self.in_flight = 0
        self.consecutive_failures = 0
        self.down_until: float | None = None  # None: up; else down (drained) until this clock time
        self.backoff_s = 0.0
        self.probing = False  # a probe request is in flight
        self.ok = 0
        self.failed = 0

    @property
    def up(self) -> bool:
        return self.down_until is None

    def __repr__(self) -> str:
        state = "up" if self.up else ("probing" if self.probing else "down")
        return f"Replica({self.url!r}, {state}, in_flight={self.in_flight})"


class ReplicaRouter:
    """Chooses a replica per request attempt; `pick` reserves it, `release` reports how the attempt went."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        eps: float = 0.25,
        vnodes: int = 64,
        failure_threshold: int = 3,
        probe_backoff_s: float = 1.0,
        max_probe_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_urls:
            raise ValueError("a router needs at least one base URL")
        if len(set(base_urls)) != len(base_urls):
            raise ValueError(f"duplicate base URLs: {list(base_urls)}")
        self.replicas = [Replica(u, i) for i, u in enumerate(base_urls)]
        self.eps = eps
        self.failure_threshold = failure_threshold
        self.probe_backoff_s = probe_backoff_s
        self.max_probe_backoff_s = max_probe_backoff_s
        self._clock = clock
        self._in_flight = 0
        self._rr = 0
        ring = sorted(
            (xxhash.xxh3_64_intdigest(f"{r.url}#{v}".encode()), r.index) for r in self.replicas for v in range(vnodes)
        )
        self._ring_hashes = [h for h, _ in ring]
        self._ring_owners = [i for _, i in ring]

    def pick(self, routing_key: str | None = None, avoid: Replica | None = None) -> Replica:
        """The replica for this attempt (its in-flight count is incremented; call `release` after).

        `avoid` (the replica a previous attempt failed on) is skipped when another replica can take the request.
        """
        replicas = self.replicas
        if len(replicas) == 1:
            return self._reserve(replicas[0])
        now = self._clock()
        for r in replicas:  # a replica whose backoff has passed gets the next request as its probe
            if r.down_until is not None and not r.probing and now >= r.down_until and r is not avoid:
                r.probing = True
                return self._reserve(r)
        usable = [r for r in replicas if r.down_until is None and r is not avoid]
        if not usable:
            usable = [r for r in replicas if r.down_until is None]
        if not usable:  # everything is down: try the one due back soonest rather than fail without trying
            return self._reserve(min(replicas, key=lambda r: r.down_until or 0.0))
        if routing_key is None:
            return self._reserve(self._least_loaded(usable))
        capacity = math.ceil((1.0 + self.eps) * (self._in_flight + 1) / len(usable))
        usable_ids = {r.index for r in usable}
        owners = self._ring_owners
        start = bisect.bisect(self._ring_hashes, xxhash.xxh3_64_intdigest(routing_key.encode()))
        seen: set[int] = set()
        for k in range(len(owners)):
            idx = owners[(start + k) % len(owners)]
            if idx in seen:
                continue
            seen.add(idx)
            if idx in usable_ids and replicas[idx].in_flight < capacity:
                return self._reserve(replicas[idx])
            if len(seen) == len(replicas):
                break
        return self._reserve(self._least_loaded(usable))

    def release(self, replica: Replica, outcome: str) -> None:
        """Report an attempt's outcome: "ok", an HTTP error kind, or a HEALTH_FAILURES kind."""
        replica.in_flight -= 1
        self._in_flight -= 1
        if outcome in HEALTH_FAILURES:
            replica.failed += 1
            replica.consecutive_failures += 1
            if replica.probing:  # the probe failed: stay down, wait longer
                replica.probing = False
                replica.backoff_s = min(self.max_probe_backoff_s, replica.backoff_s * 2)
                replica.down_until = self._clock() + replica.backoff_s
            elif replica.down_until is None and replica.consecutive_failures >= self.failure_threshold:
                replica.backoff_s = self.probe_backoff_s
                replica.down_until = self._clock() + replica.backoff_s
            return
        replica.ok += outcome == "ok"
        replica.consecutive_failures = 0
        if replica.down_until is not None:  # any HTTP answer (probe or a straggler) proves it is back
            replica.down_until = None
            replica.probing = False
            replica.backoff_s = 0.0

    def _reserve(self, replica: Replica) -> Replica:
        replica.in_flight += 1
        self._in_flight += 1
        return replica

    def _least_loaded(self, usable: list[Replica]) -> Replica:
        self._rr += 1
        n = len(usable)
        return min((usable[(self._rr + i) % n] for i in range(n)), key=lambda r: r.in_flight)

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {
                "url": r.url,
                "state": "up" if r.up else ("probing" if r.probing else "down"),
                "in_flight": r.in_flight,
                "ok": r.ok,
                "failed": r.failed,
                "down_for_s": None if r.down_until is None else max(0.0, r.down_until - now),
            }
            for r in self.replicas
        ]
