"""Adaptive per-endpoint concurrency: an AIMD controller (pure decisions) and an asyncio gate that obeys it.

The controller holds no asyncio state, so the runner can host one in a Ray actor and share a single window
across every worker of the cluster (issue 4 §3); the gate only asks it for `window` and reports outcomes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# Outcomes that mean "the endpoint is overloaded": they shrink the window. Other failures (a 400, a dropped
# connection) say nothing about load and leave it alone.
OVERLOAD_KINDS: frozenset[str] = frozenset({"http_429", "timeout", "latency"})


class AimdController:
    """Additive-increase / multiplicative-decrease concurrency window for one endpoint.

    - starts at `initial` in slow start: +1 per success (the window doubles each round trip) until the first
      push-back; from then on grows by 1 after each full window of successes while healthy (no cooldown,
      latency not elevated), never above `ceiling`;
    - shrinks by `decrease_factor` on 429s and timeouts, and by the gentler `latency_decrease_factor` when
      latency rises (smoothed latency above `latency_factor` x the running minimum: a queue is building, no
      request has failed yet), never below `floor`; at most one decrease per round-trip time, since a burst
      of 429s from one window is one congestion signal, not many;
    - after an overload that carried Retry-After, holds the window (no growth) until that cooldown has passed.

    Latencies are in seconds. `clock` is injectable so the logic is testable without sleeping.
    """

    def __init__(
        self,
        *,
        initial: int,
        ceiling: int,
        floor: int = 1,
        decrease_factor: float = 0.5,
        latency_decrease_factor: float = 0.9,
        latency_factor: float = 3.0,
        latency_samples: int = 20,
        min_window_samples: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1 or floor < 1 or floor > ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor={floor} ceiling={ceiling}")
        for name, value in (("decrease_factor", decrease_factor), ("latency_decrease_factor", latency_decrease_factor)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if latency_factor <= 1.0:
            raise ValueError(f"latency_factor must be > 1, got {latency_factor}")
        self.floor = floor
        self.ceiling = ceiling
        self.decrease_factor = decrease_factor
        self.latency_decrease_factor = latency_decrease_factor
        self.latency_factor = latency_factor
        self.latency_samples = latency_samples
        self.min_window_samples = min_window_samples
        self._clock = clock
        self._window = min(max(initial, floor), ceiling)
        self._slow_start = True  # TCP-style: grow exponentially until the endpoint first pushes back
        self._acked = 0  # successes since the window last grew
        self._ewma: float | None = None  # smoothed latency
        self._samples = 0
        # Running minimum over the last one to two epochs of `min_window_samples`, so a stale early minimum
        # ages out instead of pinning the baseline forever.
        self._min_cur = math.inf
        self._min_prev = math.inf
        self._epoch_count = 0
        self._cooldown_until = 0.0
        self._no_decrease_until = 0.0
        self.increases = 0
        self.decreases_by_kind: dict[str, int] = {}

    @property
    def window(self) -> int:
        """How many requests may be in flight now."""
        return self._window

    @property
    def min_latency(self) -> float | None:
        m = min(self._min_cur, self._min_prev)
        return None if m == math.inf else m

    def cooldown_remaining(self) -> float:
        """Seconds left of the hold imposed by the last Retry-After (0 when none)."""
        return max(0.0, self._cooldown_until - self._clock())

    def latency_elevated(self) -> bool:
        m = self.min_latency
        return (
            self._ewma is not None
            and m is not None
            and self._samples >= self.latency_samples
            and self._ewma > self.latency_factor * m
        )

    def on_success(self, latency: float) -> None:
        """A request finished normally after `latency` seconds."""
        self._samples += 1
        self._ewma = latency if self._ewma is None else self._ewma + 0.1 * (latency - self._ewma)
        if latency < self._min_cur:
            self._min_cur = latency
        self._epoch_count += 1
        if self._epoch_count >= self.min_window_samples:
            self._min_prev, self._min_cur, self._epoch_count = self._min_cur, math.inf, 0
        if self.latency_elevated():
            self._decrease("latency")
            return
        if self._window >= self.ceiling or (self._cooldown_until and self._clock() < self._cooldown_until):
            return
        if self._slow_start:  # +1 per success doubles the window every round trip until the first push-back
            self._window += 1
            self.increases += 1
            return
        self._acked += 1
        if self._acked >= self._window:
            self._window += 1
            self._acked = 0
            self.increases += 1

    def on_overload(self, kind: str, retry_after: float | None = None) -> None:
        """The endpoint pushed back (`kind` in OVERLOAD_KINDS); `retry_after` is its Retry-After in seconds."""
        if retry_after is not None and retry_after > 0:
            self._cooldown_until = max(self._cooldown_until, self._clock() + retry_after)
        self._decrease(kind)

    def _decrease(self, kind: str) -> None:
        now = self._clock()
        if now < self._no_decrease_until:
            return
        self._acked = 0
        self._slow_start = False
        self._no_decrease_until = now + (self._ewma if self._ewma is not None else 1.0)
        factor = self.latency_decrease_factor if kind == "latency" else self.decrease_factor
        smaller = max(self.floor, int(self._window * factor))
        if smaller < self._window:
            self._window = smaller
            self.decreases_by_kind[kind] = self.decreases_by_kind.get(kind, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "window": self._window,
            "floor": self.floor,
            "ceiling": self.ceiling,
            "latency_ewma_s": self._ewma,
            "latency_min_s": self.min_latency,
            "cooldown_remaining_s": self.cooldown_remaining(),
            "increases": self.increases,
            "decreases_by_kind": dict(self.decreases_by_kind),
        }


class AdaptiveLimiter:
    """An asyncio gate that admits at most `controller.window` requests at once, FIFO.

    Use `async with limiter.slot() as slot:` around one request attempt. On a clean exit the slot reports a
    success with the time spent inside it; call `slot.overload(kind, retry_after)` for 429s/timeouts, or
    `slot.neutral()` for outcomes that say nothing about load. A TimeoutError escaping the block counts as an
    overload; any other exception is neutral.
    """

    def __init__(self, controller: AimdController) -> None:
        self.controller = controller
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @classmethod
    def local(cls, initial: int, ceiling: int, **controller_kwargs: Any) -> "AdaptiveLimiter":
        """A limiter with its own local controller (the common single-process case)."""
        return cls(AimdController(initial=initial, ceiling=ceiling, **controller_kwargs))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def max_in_flight(self) -> int:
        """The most requests this gate can ever admit at once (sizes connection pools)."""
        return self.controller.ceiling

    def slot(self) -> "Slot":
        return Slot(self)

    async def _acquire(self) -> None:
        if not self._waiters and self._in_flight < self.controller.window:
            self._in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.cancelled():
                self._release()  # the slot was handed to us just as we were cancelled: give it back
            elif fut in self._waiters:  # `_release` may already have dropped it
                self._waiters.remove(fut)
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        waiters = self._waiters
        window = self.controller.window
        while waiters and self._in_flight < window:
            fut = waiters.popleft()
            if not fut.done():
                self._in_flight += 1  # handed over directly, so no newcomer can jump the queue
                fut.set_result(None)

    def snapshot(self) -> dict[str, Any]:
        return {"in_flight": self._in_flight, "waiting": len(self._waiters), **self.controller.snapshot()}


class Slot:
    """One admitted request; see `AdaptiveLimiter`."""

    __slots__ = ("_limiter", "_t0", "_reported")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter
        self._t0 = 0.0
        self._reported = False

    async def __aenter__(self) -> "Slot":
        limiter = self._limiter
        if not limiter._waiters and limiter._in_flight < limiter.controller.window:
            limiter._in_flight += 1  # the common case, without a second coroutine
        else:
            await limiter._acquire()
        self._t0 = time.perf_counter()
        return self

    def overload(self, kind: str, retry_after: float | None = None) -> None:
        self._reported = True
        self._limiter.controller.on_overload(kind, retry_after)

    def neutral(self) -> None:
        self._reported = True

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if not self._reported:
            if exc_type is None:
                self._limiter.controller.on_success(time.perf_counter() - self._t0)
            elif issubclass(exc_type, TimeoutError):
                self._limiter.controller.on_overload("timeout")
        self._limiter._release()
