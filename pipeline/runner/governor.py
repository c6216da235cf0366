"""One adaptive concurrency window per endpoint for the whole cluster, hosted in a Ray actor.

Every worker's limiter asks a local `SharedWindow` for its window; the `SharedWindow` batches the worker's
outcomes and, every `sync_s`, sends them to the endpoint's `EndpointGovernor` actor, which runs the single
`AimdController` of that endpoint and answers with the worker's share of the global window. The window starts
at the endpoint's `max_concurrency` (what the user says it can take) and only shrinks when the endpoint pushes back. A 429 seen by one
worker therefore slows every worker, and Retry-After holds the whole cluster, at the cost of one small actor
call per worker per `sync_s`, not one per request.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import ray

from pipeline.limiter import AimdController


@ray.remote(num_cpus=0)
class EndpointGovernor:
    """The cluster's single AIMD controller for one endpoint."""

    def __init__(self, initial: int, ceiling: int) -> None:
        self.controller = AimdController(initial=initial, ceiling=ceiling)
        self.last_seen: dict[str, float] = {}
        self.demand: dict[str, int] = {}

    def report(self, worker: str, n_ok: int, mean_latency: float, min_latency: float,
               overloads: list[tuple[str, float | None]], demand: int) -> tuple[int, float]:
        """Fold one worker's outcomes in; return (this worker's window, cooldown seconds).

        The global window is split in proportion to demand (requests in flight or waiting), so a worker between
        shards does not sit on a share that another worker could use.
        """
        now = time.monotonic()
        self.last_seen[worker] = now
        self.demand[worker] = demand
        c = self.controller
        if n_ok:
            c.on_success(min_latency)
            for _ in range(n_ok - 1):
                c.on_success(mean_latency)
        for kind, retry_after in overloads:
            c.on_overload(kind, retry_after)
        live = [w for w, t in self.last_seen.items() if now - t < 5.0]
        total = sum(self.demand[w] for w in live)
        share = demand / total if total else 1 / max(len(live), 1)
        return max(1, math.ceil(c.window * share)), c.cooldown_remaining()

    def snapshot(self) -> dict[str, Any]:
        return {**self.controller.snapshot(), "workers": len(self.last_seen)}


class SharedWindow:
    """A worker-local stand-in for `AimdController` whose window is this worker's share of the governor's.

    Duck-types the parts of AimdController that `AdaptiveLimiter` uses (`window`, `ceiling`, `on_success`,
    `on_overload`, `snapshot`).
    """

    def __init__(self, governor: Any, worker: str, *, initial: int, ceiling: int, sync_s: float = 0.2) -> None:
        self.governor, self.worker, self.ceiling, self.sync_s = governor, worker, ceiling, sync_s
        self.demand: Any = lambda: 0  # set by the owner: requests in flight plus waiting at this worker
        self.floor = 1
        self._window = max(1, initial)
        self._n = 0
        self._sum = 0.0
        self._min = math.inf
        self._overloads: list[tuple[str, float | None]] = []
        self._cooldown = 0.0
        self._task: asyncio.Task | None = None

    @property
    def window(self) -> int:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sync_forever())
        return self._window

    def on_success(self, latency: float) -> None:
        self._n += 1
        self._sum += latency
        self._min = min(self._min, latency)

    def on_overload(self, kind: str, retry_after: float | None = None) -> None:
        self._overloads.append((kind, retry_after))

    async def _sync_forever(self) -> None:
        while True:
            await self.sync()
            await asyncio.sleep(self.sync_s)

    async def sync(self) -> None:
        n, mean = self._n, (self._sum / self._n if self._n else 0.0)
        low, overloads = (self._min if self._n else 0.0), self._overloads
        self._n, self._sum, self._min, self._overloads = 0, 0.0, math.inf, []
        try:
            self._window, self._cooldown = await self.governor.report.remote(self.worker, n, mean, low, overloads,
                                                                             self.demand())
        except Exception:  # a lost governor must not stop the work: keep the last window
            return

    def cooldown_remaining(self) -> float:
        return self._cooldown

    def snapshot(self) -> dict[str, Any]:
        return {"window": self._window, "ceiling": self.ceiling, "shared": True, "cooldown_remaining_s": self._cooldown}

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
