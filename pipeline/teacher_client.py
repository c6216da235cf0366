"""The request path to teacher and judge endpoints: a lean aiohttp client for OpenAI-compatible chat completions.

Why not `openai.AsyncOpenAI`: on a 2-core machine it costs 2-9 ms of CPU per request against well under 1 ms for
a bare aiohttp loop, and with thousands of requests in flight the client, not the GPUs, then sets the
throughput (issue 5; figures in benchmarks/README.md).
So this client keeps one pooled `aiohttp.ClientSession`, builds the JSON body by hand, parses the reply with
`json.loads` and creates few objects per request. The first attempt runs outside tenacity (its bookkeeping
costs ~20 us); only a request that needs a retry enters `AsyncRetrying`.

Failure policy: 429, 5xx, timeouts, connection errors and malformed bodies are retried with jittered
exponential backoff that honours Retry-After; other 4xx are not. After `max_retries` retries the request
raises `RequestFailed`. The API key is sent only in the Authorization header and is redacted from every
message this module produces.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pipeline.errors import ConfigError
from pipeline.limiter import OVERLOAD_KINDS, AdaptiveLimiter
from pipeline.routing import Replica, ReplicaRouter

log = logging.getLogger(__name__)

FAILURE_KINDS: tuple[str, ...] = ("http_429", "http_5xx", "http_4xx", "timeout", "connection", "malformed")
RETRYABLE_KINDS: frozenset[str] = frozenset({"http_429", "http_5xx", "timeout", "connection", "malformed"})
MAX_RETRY_AFTER_S = 300.0  # a Retry-After beyond this is treated as this (a run should not sleep for hours)

Event = tuple[str, Any]  # ("retry", kind) | ("ok", latency_ms) | ("fail", kind)


@dataclass(frozen=True)
class EndpointSpec:
    """One OpenAI-compatible endpoint (a teacher or the judge). `base_urls` are its replicas, e.g. ".../v1"."""

    name: str
    base_urls: tuple[str, ...]
    model: str
    api_key: str | None = field(default=None, repr=False)
    max_concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 6

    def __post_init__(self) -> None:
        where = f"endpoint {self.name!r}"
        urls = (self.base_urls,) if isinstance(self.base_urls, str) else tuple(self.base_urls)
        object.__setattr__(self, "base_urls", urls)
        if not urls:
            raise ConfigError("no base URL given", where=where, hint="give at least one base_url, e.g. http://host:8000/v1")
        for u in urls:
            if not isinstance(u, str) or not u.startswith(("http://", "https://")):
                raise ConfigError(f"base URL {u!r} is not an http(s) URL", where=where, hint="e.g. http://host:8000/v1")
        if len(set(urls)) != len(urls):
            raise ConfigError("duplicate base URLs", where=where, hint="list each replica once")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {self.max_concurrency}", where=where)
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0, got {self.timeout_s}", where=where)
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}", where=where)


@dataclass
class Completion:
    """The choices of one successful chat completion. `latency_ms` is that of the attempt that succeeded."""

    texts: list[str]
    finish_reasons: list[str | None]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempts: int
    base_url: str


class RequestFailed(Exception):
    """A request failed for good: a non-retryable answer, or retries exhausted. `kind` is one of FAILURE_KINDS."""

    def __init__(self, kind: str, attempts: int, status: int | None, message: str) -> None:
        super().__init__(kind, attempts, status, message)
        self.kind = kind
        self.attempts = attempts
        self.status = status
        self.message = message

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.kind}{status} after {self.attempts} attempt(s): {self.message}"


class _AttemptError(Exception):
    """One attempt failed; internal to the retry loop (never escapes this module)."""

    __slots__ = ("kind", "status", "message", "retry_after", "replica")

    def __init__(self, kind: str, status: int | None, message: str, retry_after: float | None, replica: Replica) -> None:
        self.kind = kind
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.replica = replica


class ClientStats:
    """Live counters of one client; `snapshot()` is what the live view and the manifest read."""

    __slots__ = ("requests", "ok", "failed", "attempts", "in_flight", "latency_ms_sum", "retries_by_kind", "failures_by_kind")

    def __init__(self) -> None:
        self.requests = 0
        self.ok = 0
        self.failed = 0
        self.attempts = 0
        self.in_flight = 0
        self.latency_ms_sum = 0.0
        self.retries_by_kind: dict[str, int] = {}
        self.failures_by_kind: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "attempts": self.attempts,
            "retries": sum(self.retries_by_kind.values()),
            "retries_by_kind": dict(self.retries_by_kind),
            "failures_by_kind": dict(self.failures_by_kind),
            "in_flight": self.in_flight,
            "latency_ms_sum": self.latency_ms_sum,
            "latency_ms_mean": self.latency_ms_sum / self.ok if self.ok else None,
        }


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_delay(retry: int, *, base_s: float, max_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Delay before retry number `retry` (1-based): equal-jitter exponential, never shorter than Retry-After."""
    cap = min(max_s, base_s * (2.0 ** (retry - 1)))
    delay = cap / 2.0 + rng.uniform(0.0, cap / 2.0)
    return max(delay, retry_after) if retry_after is not None else delay


def parse_choices(raw: bytes, n: int) -> tuple[list[str], list[str | None], int | None, int | None]:
    """Texts, finish reasons and token counts of a chat completion body; raises ValueError/KeyError/TypeError if
    it is not one with exactly `n` text choices (a null content, as in a bare refusal, reads as "")."""
    doc = json.loads(raw)
    choices = doc["choices"]
    if len(choices) != n:
        raise ValueError(f"expected {n} choice(s), got {len(choices)}")
    for i, c in enumerate(choices):
        if c.get("index", i) != i:  # rare: a server that does not list choices in order
            choices = sorted(choices, key=lambda c: c["index"])
            break
    texts: list[str] = []
    finish: list[str | None] = []
    for c in choices:
        content = c["message"]["content"]
        if content is None:
            content = ""
        elif type(content) is not str:
            raise TypeError(f"message content is {type(content).__name__}, not a string")
        texts.append(content)
        finish.append(c.get("finish_reason"))
    usage = doc.get("usage") or {}
    return texts, finish, usage.get("prompt_tokens"), usage.get("completion_tokens")


class ChatClient:
    """Async client for one endpoint; one per endpoint per process. Use as `async with ChatClient(spec) as c:`.

    `limiter` (an AdaptiveLimiter) gates every attempt; without one, a plain semaphore caps attempts in flight
    at `spec.max_concurrency`. `on_event` receives ("retry", kind), ("ok", latency_ms) and ("fail", kind).
    """

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        limiter: AdaptiveLimiter | None = None,
        on_event: Callable[[Event], None] | None = None,
        router: ReplicaRouter | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.spec = spec
        self.limiter = limiter
        self.on_event = on_event
        self.router = router if router is not None else ReplicaRouter(spec.base_urls)
        self.stats = ClientStats()
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._rng = random.Random()
        self._gate = limiter.slot if limiter is not None else None
        self._semaphore: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._urls = {r.url: r.url.rstrip("/") + "/chat/completions" for r in self.router.replicas}
        self._headers = {"Content-Type": "application/json"}
        if spec.api_key:
            self._headers["Authorization"] = f"Bearer {spec.api_key}"
        self._body_head = '{"model":' + json.dumps(spec.model) + ',"messages":'
        self._closed = False

    def __repr__(self) -> str:
        return f"ChatClient(name={self.spec.name!r}, model={self.spec.model!r}, base_urls={list(self.spec.base_urls)!r})"

    async def __aenter__(self) -> "ChatClient":
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        limit = self.limiter.max_in_flight if self.limiter is not None else self.spec.max_concurrency
        if self.limiter is None:
            self._semaphore = asyncio.Semaphore(self.spec.max_concurrency)
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=60.0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.spec.timeout_s, sock_connect=min(self.spec.timeout_s, 10.0)),
        )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------------------------------- requests

    def _body(
        self,
        messages: list[dict],
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int | None,
        response_format: dict | None,
    ) -> bytes:
        tail = f',"n":{int(n)},"temperature":{float(temperature)!r},"top_p":{float(top_p)!r},"max_tokens":{int(max_tokens)}'
        if seed is not None:
            tail += f',"seed":{int(seed)}'
        if response_format is not None:
            tail += ',"response_format":' + json.dumps(response_format, separators=(",", ":"))
        return (self._body_head + json.dumps(messages, ensure_ascii=False, separators=(",", ":")) + tail + "}").encode()

    async def complete(
        self,
        messages: list[dict],
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 512,
        seed: int | None = None,
        response_format: dict | None = None,
        routing_key: str | None = None,
    ) -> Completion:
        """One chat completion with `n` choices. Raises RequestFailed when it fails for good."""
        body = self._body(messages, n, temperature, top_p, max_tokens, seed, response_format)
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        try:
            try:
                completion = await self._attempt(body, n, routing_key, None, 1)
            except _AttemptError as exc:
                if exc.kind not in RETRYABLE_KINDS or self.spec.max_retries == 0:
                    raise self._failed(exc, 1) from None
                completion = await self._retry(body, n, routing_key, exc)
        finally:
            stats.in_flight -= 1
        stats.ok += 1
        stats.latency_ms_sum += completion.latency_ms
        if self.on_event is not None:
            self.on_event(("ok", completion.latency_ms))
        return completion

    async def _retry(self, body: bytes, n: int, routing_key: str | None, first: _AttemptError) -> Completion:
        """Attempts 2..max_retries+1 under tenacity, after the backoff the first failure calls for."""
        last = first
        self._note_retry(first, 1)
        await asyncio.sleep(self._delay(1, first))

        def wait(state: RetryCallState) -> float:
            return self._delay(state.attempt_number + 1, state.outcome.exception())  # type: ignore[union-attr,arg-type]

        def before_sleep(state: RetryCallState) -> None:
            self._note_retry(state.outcome.exception(), state.attempt_number + 1)  # type: ignore[union-attr,arg-type]

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.spec.max_retries),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, _AttemptError) and e.kind in RETRYABLE_KINDS),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempt_no = 1
        try:
            async for attempt in retrying:
                with attempt:
                    attempt_no += 1
                    try:
                        return await self._attempt(body, n, routing_key, last.replica, attempt_no)
                    except _AttemptError as exc:
                        last = exc
                        raise
        except _AttemptError as exc:
            raise self._failed(exc, attempt_no) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _delay(self, retry: int, exc: _AttemptError) -> float:
        return backoff_delay(
            retry, base_s=self.backoff_base_s, max_s=self.backoff_max_s, retry_after=exc.retry_after, rng=self._rng
        )

    def _note_retry(self, exc: _AttemptError, retry: int) -> None:
        by_kind = self.stats.retries_by_kind
        by_kind[exc.kind] = by_kind.get(exc.kind, 0) + 1
        log.debug("%s: retry %d after %s: %s", self.spec.name, retry, exc.kind, exc.message)
        if self.on_event is not None:
            self.on_event(("retry", exc.kind))

    def _failed(self, exc: _AttemptError, attempts: int) -> RequestFailed:
        stats = self.stats
        stats.failed += 1
        stats.failures_by_kind[exc.kind] = stats.failures_by_kind.get(exc.kind, 0) + 1
        if self.on_event is not None:
            self.on_event(("fail", exc.kind))
        log.debug("%s: failed after %d attempt(s): %s", self.spec.name, attempts, exc.kind)
        return RequestFailed(exc.kind, attempts, exc.status, f"{self.spec.name} at {exc.replica.url}: {exc.message}")

    async def _attempt(
        self, body: bytes, n: int, routing_key: str | None, avoid: Replica | None, attempt_no: int
    ) -> Completion:
        """One attempt: pick a replica, pass the gate, POST, parse. Raises _AttemptError.

        Kept as one coroutine (no helper coroutines): every await layer costs CPU on each of the ~5 times a
        request is resumed, and this is the hot path.
        """
        session = self._session if self._session is not None else self._open()
        router = self.router
        replica = router.pick(routing_key, avoid)
        outcome = "ok"
        try:
            async with self._gate() if self._gate is not None else self._semaphore as slot:  # type: ignore[union-attr]
                self.stats.attempts += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(self._urls[replica.url], data=body, headers=self._headers) as resp:
                        status = resp.status
                        raw = await resp.read()
                        retry_after = resp.headers.get("Retry-After") if status != 200 else None
                except TimeoutError:
                    err = _AttemptError("timeout", None, f"no answer within {self.spec.timeout_s:g}s", None, replica)
                except aiohttp.ClientError as exc:
                    err = _AttemptError("connection", None, self._redact(f"{type(exc).__name__}: {exc}"), None, replica)
                else:
                    latency_ms = (time.perf_counter() - t0) * 1000.0
                    if status == 200:
                        try:
                            texts, finish, prompt_tokens, completion_tokens = parse_choices(raw, n)
                            return Completion(texts, finish, prompt_tokens, completion_tokens, latency_ms, attempt_no, replica.url)
                        except (ValueError, KeyError, TypeError, AttributeError) as exc:
                            message = self._redact(f"unreadable completion body: {type(exc).__name__}: {exc}")
                        err = _AttemptError("malformed", status, message, None, replica)
                    else:
                        err = self._http_error(status, raw, retry_after, replica)
                outcome = err.kind
                if slot is not None:  # an AdaptiveLimiter slot (a plain semaphore yields None)
                    if err.kind in OVERLOAD_KINDS:
                        slot.overload(err.kind, err.retry_after)
                    else:
                        slot.neutral()
                raise err
        finally:
            router.release(replica, outcome)

    def _http_error(self, status: int, raw: bytes, retry_after_header: str | None, replica: Replica) -> _AttemptError:
        if status == 429:
            kind = "http_429"
        elif status >= 500:
            kind = "http_5xx"
        else:
            kind = "http_4xx"
        detail = raw[:2000].decode("utf-8", "replace")
        try:
            err = json.loads(raw)
            if isinstance(err, dict) and isinstance(err.get("error"), dict) and "message" in err["error"]:
                detail = str(err["error"]["message"])
            elif isinstance(err, dict) and "message" in err:
                detail = str(err["message"])
        except ValueError:
            pass
        detail = self._redact(detail.strip()[:500]) or "(empty body)"
        return _AttemptError(kind, status, f"HTTP {status}: {detail}", parse_retry_after(retry_after_header), replica)

    def _redact(self, text: str) -> str:
        key = self.spec.api_key
        return text.replace(key, "[REDACTED]") if key else text
