"""Latency model and fault injection for the scripted teacher.

Faults are drawn from one `random.Random(config.seed)` per server, in request-arrival order: a run is
reproducible in aggregate (the same share of 429s, hangs, ...) while a retried, byte-identical request gets a
fresh draw and can succeed, which is what a retrying client needs to be tested against.
"""

from __future__ import annotations

import json
import random

from pipeline.scripted_teacher.config import ScriptedTeacherConfig

OK = "ok"
OUTCOMES: tuple[str, ...] = ("ok", "429", "500", "hang", "malformed", "drop")

RATE_LIMIT_BODY = json.dumps(
    {
        "error": {
            "message": "Rate limit reached for requests on the scripted teacher. Please retry after the time in the Retry-After header.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
).encode()

SERVER_ERROR_BODY = json.dumps(
    {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
).encode()


class FaultInjector:
    """Decides each request's fault and latency. Single-threaded: used only from the server's event loop."""

    def __init__(self, config: ScriptedTeacherConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        # Cumulative thresholds over one uniform draw: at most one fault per request.
        edges: list[tuple[float, str]] = []
        acc = 0.0
        for rate, outcome in (
            (config.fault_429, "429"),
            (config.fault_500, "500"),
            (config.fault_hang, "hang"),
            (config.fault_malformed, "malformed"),
            (config.fault_drop, "drop"),
        ):
            if rate > 0:
                acc += rate
                edges.append((acc, outcome))
        self._edges = tuple(edges)
        self.retry_after_headers = {
            "Retry-After": _format_seconds(config.retry_after),
            "retry-after-ms": str(int(round(config.retry_after * 1000))),
        }

    def draw(self) -> str:
        """This request's outcome: "ok" or one of the fault kinds."""
        if not self._edges:
            return OK
        u = self._rng.random()
        for edge, outcome in self._edges:
            if u < edge:
                return outcome
        return OK

    def judge_invalid(self) -> bool:
        """Whether this judge answer should be unusable (drawn only when the rate is set)."""
        rate = self.config.fault_judge_invalid
        return rate > 0 and self._rng.random() < rate

    def latency(self, completion_tokens: int) -> float:
        """Seconds to wait before answering: base + per token + uniform jitter."""
        c = self.config
        delay = c.latency_base + c.latency_per_token * completion_tokens
        if c.jitter > 0:
            delay += self._rng.uniform(0.0, c.jitter)
        return delay

    def invalid_judge_content(self, valid: str) -> str:
        """A judge answer a parser must reject: the verdict object cut short, or prose with no JSON at all."""
        if self._rng.random() < 0.5:
            return valid[: max(1, len(valid) // 2)]
        return "The response seems mostly fine to me; I'd call it fairly safe and reasonably helpful overall."


def malformed_body(body: bytes) -> bytes:
    """An HTTP 200 body that is not valid JSON: the real completion, truncated mid-object."""
    return body[: max(1, len(body) // 2)]


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
