"""The worker actor: one per CPU, each running many units concurrently on its own asyncio loop."""

from __future__ import annotations

from typing import Any

import ray

from pipeline.config import RunConfig
from pipeline.records import Seed
from pipeline.shards import Provenance


@ray.remote
class UnitWorker:
    """Holds one work context (clients with their connection pools and limiters) for the whole run."""

    def __init__(self, cfg_json: dict[str, Any], storage_uri: str, prov: Provenance, urls: dict[str, tuple[str, ...]],
                 governors: dict[str, Any], name: str) -> None:
        self._args = (RunConfig.model_validate(cfg_json), storage_uri, prov, urls)
        self._governors = governors
        self._name = name
        self._ctx = None
        self._windows: list[Any] = []

    def _context(self):
        if self._ctx is None:  # built on first use, inside the actor's event loop (aiohttp needs one)
            from pipeline.wiring import build_context

            from pipeline.limiter import AdaptiveLimiter
            from pipeline.runner.governor import SharedWindow

            cfg, uri, prov, urls = self._args
            endpoints = {e.name: e for e in [*cfg.teachers, *([cfg.judge] if cfg.judge else [])]}
            limiters = {}
            for name, gov in self._governors.items():
                window = SharedWindow(gov, self._name, initial=1, ceiling=endpoints[name].max_concurrency)
                self._windows.append(window)
                limiter = AdaptiveLimiter(window)  # type: ignore[arg-type]
                window.demand = lambda lim=limiter: lim.in_flight + lim.waiting
                limiters[name] = limiter
            self._ctx = build_context(cfg, uri, prov, urls, limiters=limiters)
        return self._ctx

    async def expand(self, unit: str, seeds: list[Seed]) -> dict[str, Any]:
        from pipeline.work import expand_unit

        return await expand_unit(self._context(), unit, seeds)

    async def shard(self, index: int, total: int) -> dict[str, Any]:
        from pipeline.work import sample_shard

        return await sample_shard(self._context(), index, total)

    async def progress(self) -> dict[str, Any]:
        if self._ctx is None:
            return {}
        import os

        out = self._ctx.tally.snapshot()
        out["pid"] = os.getpid()
        out["clients"] = {name: c.stats.snapshot() for name, c in self._ctx.clients.items()}
        if self._ctx.judge_client is not None:
            out["clients"]["judge"] = self._ctx.judge_client.stats.snapshot()
        return out

    async def close(self) -> None:
        for window in self._windows:
            window.close()
        if self._ctx is not None:
            from pipeline.wiring import close_context

            await close_context(self._ctx)
