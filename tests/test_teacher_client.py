"""ChatClient against real HTTP servers on 127.0.0.1 that misbehave in scripted ways (429, 500, hangs, ...)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import pickle
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from pipeline.errors import ConfigError
from pipeline.limiter import AdaptiveLimiter
from pipeline.routing import ReplicaRouter
from pipeline.teacher_client import (
    ChatClient,
    EndpointSpec,
    RequestFailed,
    backoff_delay,
    parse_choices,
    parse_retry_after,
)

KEY = "test-key-DO-NOT-LEAK-7f3a9c1e"  # recognisable fake; never a real credential
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Why is the sky blue? ✓"}]

Action = Callable[[web.Request], Awaitable[web.StreamResponse]]


def completion_body(n: int = 1, text: str = "answer") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"{text} {i}"}, "finish_reason": "stop"} for i in range(n)
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7 * n, "total_tokens": 11 + 7 * n},
    }


async def ok(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response(completion_body(body.get("n", 1)))


def status(code: int, *, retry_after: str | None = None, message: str = "nope") -> Action:
    async def handler(request: web.Request) -> web.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        return web.json_response({"error": {"message": message}}, status=code, headers=headers)

    return handler


def hang(seconds: float) -> Action:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return await ok(request)

    return handler


async def malformed(request: web.Request) -> web.Response:
    return web.Response(body=b'{"choices": [{"index": 0, "mess', content_type="application/json")


async def drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)  # never sent


def echo_auth(code: int) -> Action:
    """A careless server that puts the Authorization header into its error body."""

    async def handler(request: web.Request) -> web.Response:
        leaked = request.headers.get("Authorization", "")
        if code == 200:
            return web.Response(body=f'{{"oops": "{leaked}"'.encode(), content_type="application/json")
        return web.json_response({"error": {"message": f"bad auth header {leaked}"}}, status=code)

    return handler


class ScriptServer:
    """Answers the i-th request with actions[i] (the last action repeats); records what it received."""

    def __init__(self, *actions: Action) -> None:
        self.actions = list(actions)
        self.received: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        i = len(self.received)
        raw = await request.read()
        self.received.append({"t": time.monotonic(), "body": json.loads(raw), "headers": dict(request.headers)})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.actions[min(i, len(self.actions) - 1)](request)
        finally:
            self.in_flight -= 1

    async def __aenter__(self) -> "ScriptServer":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def spec(*urls: str, **kw: Any) -> EndpointSpec:
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("max_retries", 3)
    return EndpointSpec("teacher-a", tuple(urls), "model-x", KEY, **kw)


def client(s: EndpointSpec, events: list | None = None, **kw: Any) -> ChatClient:
    return ChatClient(s, on_event=events.append if events is not None else None, backoff_base_s=0.01, backoff_max_s=0.05, **kw)


def free_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# ------------------------------------------------------------------------------------------------ success


def test_success_sends_exact_request_and_parses_choices() -> None:
    async def go() -> None:
        async with ScriptServer(ok) as srv:
            events: list = []
            async with client(spec(srv.base_url), events) as c:
                fmt = {"type": "json_schema", "json_schema": {"name": "rewrites", "strict": True, "schema": {"type": "object"}}}
                r = await c.complete(MESSAGES, n=3, temperature=0.7, top_p=0.9, max_tokens=64, seed=42, response_format=fmt)
            assert r.texts == ["answer 0", "answer 1", "answer 2"]
            assert r.finish_reasons == ["stop"] * 3
            assert (r.prompt_tokens, r.completion_tokens, r.attempts, r.base_url) == (11, 21, 1, srv.base_url)
            assert r.latency_ms > 0
            (got,) = srv.received
            assert got["body"] == {"model": "model-x", "messages": MESSAGES, "n": 3, "temperature": 0.7, "top_p": 0.9,
                                   "max_tokens": 64, "seed": 42, "response_format": fmt}
            assert got["headers"]["Authorization"] == f"Bearer {KEY}"
            assert [e[0] for e in events] == ["ok"]
            snap = c.stats.snapshot()
            assert (snap["requests"], snap["ok"], snap["failed"], snap["in_flight"], snap["retries"]) == (1, 1, 0, 0, 0)

    asyncio.run(go())


def test_no_seed_no_format_and_no_key_sends_neither() -> None:
    async def go() -> None:
        async with ScriptServer(ok) as srv:
            async with ChatClient(EndpointSpec("open", (srv.base_url,), "m")) as c:
                await c.complete(MESSAGES)
            body, headers = srv.received[0]["body"], srv.received[0]["headers"]
            assert "seed" not in body and "response_format" not in body
            assert "Authorization" not in headers

    asyncio.run(go())


def test_parse_choices_orders_by_index_and_reads_null_content_as_empty() -> None:
    doc = completion_body(2)
    doc["choices"].reverse()
    doc["choices"][0]["message"]["content"] = None  # index 1: a bare refusal
    texts, finish, pt, ct = parse_choices(json.dumps(doc).encode(), 2)
    assert texts == ["answer 0", ""] and finish == ["stop", "stop"] and (pt, ct) == (11, 14)
    with pytest.raises(ValueError):
        parse_choices(json.dumps(completion_body(1)).encode(), 2)  # fewer choices than asked
    with pytest.raises(KeyError):
        parse_choices(b'{"error": {"message": "x"}}', 1)


# ------------------------------------------------------------------------------------------------ retries


def test_429_honours_retry_after_then_succeeds() -> None:
    async def go() -> None:
        async with ScriptServer(status(429, retry_after="1"), ok) as srv:
            events: list = []
            async with client(spec(srv.base_url), events) as c:
                r = await c.complete(MESSAGES)
            assert r.attempts == 2
            # The retry came no sooner than Retry-After allowed (a lower bound, so it cannot flake on a slow box).
            assert srv.received[1]["t"] - srv.received[0]["t"] >= 0.99
            assert events[0] == ("retry", "http_429") and events[1][0] == "ok"
            assert c.stats.snapshot()["retries_by_kind"] == {"http_429": 1}

    asyncio.run(go())


def test_500_then_ok_is_retried() -> None:
    async def go() -> None:
        async with ScriptServer(status(500), status(503), ok) as srv:
            async with client(spec(srv.base_url)) as c:
                r = await c.complete(MESSAGES)
            assert r.attempts == 3 and len(srv.received) == 3
            assert c.stats.snapshot()["retries_by_kind"] == {"http_5xx": 2}

    asyncio.run(go())


def test_hang_times_out_and_is_retried() -> None:
    async def go() -> None:
        async with ScriptServer(hang(3.0), ok) as srv:
            async with client(spec(srv.base_url, timeout_s=0.3)) as c:
                r = await c.complete(MESSAGES)
            assert r.attempts == 2
            assert c.stats.snapshot()["retries_by_kind"] == {"timeout": 1}

    asyncio.run(go())


def test_malformed_body_is_retried_then_fails_with_kind() -> None:
    async def go() -> None:
        async with ScriptServer(malformed, ok) as srv:
            async with client(spec(srv.base_url)) as c:
                assert (await c.complete(MESSAGES)).attempts == 2
        async with ScriptServer(malformed) as srv:
            events: list = []
            async with client(spec(srv.base_url, max_retries=2), events) as c:
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
            assert (info.value.kind, info.value.attempts, info.value.status) == ("malformed", 3, 200)
            assert len(srv.received) == 3
            assert events == [("retry", "malformed"), ("retry", "malformed"), ("fail", "malformed")]
            assert c.stats.snapshot()["failures_by_kind"] == {"malformed": 1}

    asyncio.run(go())


def test_dropped_connection_is_retried() -> None:
    async def go() -> None:
        async with ScriptServer(drop, ok) as srv:
            async with client(spec(srv.base_url)) as c:
                r = await c.complete(MESSAGES)
            assert r.attempts == 2
            assert c.stats.snapshot()["retries_by_kind"] == {"connection": 1}

    asyncio.run(go())


def test_refused_connection_fails_as_connection_after_retries() -> None:
    async def go() -> None:
        async with client(spec(free_port_url(), max_retries=1)) as c:
            with pytest.raises(RequestFailed) as info:
                await c.complete(MESSAGES)
        assert (info.value.kind, info.value.attempts, info.value.status) == ("connection", 2, None)

    asyncio.run(go())


def test_400_is_not_retried() -> None:
    async def go() -> None:
        async with ScriptServer(status(400, message="max_tokens is too large"), ok) as srv:
            async with client(spec(srv.base_url)) as c:
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
            assert len(srv.received) == 1
            exc = info.value
            assert (exc.kind, exc.attempts, exc.status) == ("http_4xx", 1, 400)
            assert "max_tokens is too large" in exc.message and "teacher-a" in exc.message

    asyncio.run(go())


def test_a_4xx_after_a_retry_stops_the_retries() -> None:
    async def go() -> None:
        async with ScriptServer(status(500), status(404, message="model not found"), ok) as srv:
            async with client(spec(srv.base_url)) as c:
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
            assert (info.value.kind, info.value.attempts, info.value.status) == ("http_4xx", 2, 404)
            assert len(srv.received) == 2

    asyncio.run(go())


def test_retries_exhausted_raise_request_failed_that_survives_pickling() -> None:
    async def go() -> RequestFailed:
        async with ScriptServer(status(502)) as srv:
            async with client(spec(srv.base_url, max_retries=2)) as c:
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
            assert len(srv.received) == 3
            return info.value

    exc = asyncio.run(go())
    assert (exc.kind, exc.attempts, exc.status) == ("http_5xx", 3, 502)
    back = pickle.loads(pickle.dumps(exc))  # Ray ships exceptions between processes
    assert (back.kind, back.attempts, back.status, back.message) == (exc.kind, exc.attempts, exc.status, exc.message)


def test_max_retries_zero_means_one_attempt() -> None:
    async def go() -> None:
        async with ScriptServer(status(500), ok) as srv:
            async with client(spec(srv.base_url, max_retries=0)) as c:
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
            assert info.value.attempts == 1 and len(srv.received) == 1

    asyncio.run(go())


def test_retry_after_parsing_and_backoff() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(email.utils.formatdate(now + 7, usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0  # in the past
    assert parse_retry_after("999999") == 300.0  # capped
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("") is None
    import random

    rng = random.Random(0)
    delays = [backoff_delay(k, base_s=1.0, max_s=8.0, retry_after=None, rng=rng) for k in range(1, 7)]
    for k, d in enumerate(delays, start=1):
        cap = min(8.0, 2.0 ** (k - 1))
        assert cap / 2 <= d <= cap
    assert backoff_delay(1, base_s=1.0, max_s=8.0, retry_after=5.0, rng=rng) == 5.0


# ------------------------------------------------------------------------------------------------ secrets


def test_api_key_never_leaks_into_reprs_errors_stats_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def go() -> list[RequestFailed]:
        failures = []
        async with ScriptServer(echo_auth(400)) as srv:
            async with client(spec(srv.base_url, max_retries=1)) as c:
                assert KEY not in repr(c)
                with pytest.raises(RequestFailed) as info:
                    await c.complete(MESSAGES)
                failures.append(info.value)
            assert srv.received[0]["headers"]["Authorization"] == f"Bearer {KEY}"  # it was sent, in the header
        for action in (echo_auth(500), echo_auth(200)):
            async with ScriptServer(action) as srv:
                async with client(spec(srv.base_url, max_retries=1)) as c:
                    with pytest.raises(RequestFailed) as info:
                        await c.complete(MESSAGES)
                    failures.append(info.value)
                    assert KEY not in json.dumps(c.stats.snapshot())
        return failures

    failures = asyncio.run(go())
    assert [f.kind for f in failures] == ["http_4xx", "http_5xx", "malformed"]
    assert "[REDACTED]" in failures[0].message  # the echoed key was there, and was scrubbed
    for f in failures:
        for text in (str(f), repr(f), f.message, repr(f.args), repr(f.__cause__), repr(f.__context__)):
            assert KEY not in text
    assert KEY not in repr(spec("http://x/v1"))
    assert caplog.records, "the retries should have been logged at DEBUG"
    assert KEY not in caplog.text


# ------------------------------------------------------------------------------------------------ gating


def test_without_limiter_in_flight_is_capped_at_max_concurrency() -> None:
    async def go() -> None:
        async with ScriptServer(hang(0.1)) as srv:
            async with client(spec(srv.base_url, max_concurrency=3)) as c:
                await asyncio.gather(*(c.complete(MESSAGES) for _ in range(20)))
            assert len(srv.received) == 20 and srv.max_in_flight <= 3

    asyncio.run(go())


def test_limiter_window_caps_in_flight_and_429_shrinks_it() -> None:
    async def go() -> None:
        async with ScriptServer(hang(0.05)) as srv:
            limiter = AdaptiveLimiter.local(initial=2, ceiling=2)
            async with client(spec(srv.base_url, max_concurrency=8), limiter=limiter) as c:
                await asyncio.gather(*(c.complete(MESSAGES) for _ in range(12)))
            assert len(srv.received) == 12 and srv.max_in_flight <= 2  # the limiter, not max_concurrency, decides
        async with ScriptServer(status(429, retry_after="0"), ok) as srv:
            limiter = AdaptiveLimiter.local(initial=8, ceiling=8)
            async with client(spec(srv.base_url, max_concurrency=8), limiter=limiter) as c:
                await c.complete(MESSAGES)
            assert limiter.controller.window == 4
            assert limiter.controller.snapshot()["decreases_by_kind"] == {"http_429": 1}
            assert limiter.in_flight == 0

    asyncio.run(go())


def test_failed_replica_is_avoided_on_retry() -> None:
    async def go() -> None:
        dead = free_port_url()
        async with ScriptServer(ok) as srv:
            s = spec(dead, srv.base_url, max_retries=2)
            async with client(s, router=ReplicaRouter(s.base_urls, failure_threshold=3, probe_backoff_s=600)) as c:
                results = [await c.complete(MESSAGES) for i in range(12)]
            assert all(r.base_url == srv.base_url for r in results)
            assert len(srv.received) == 12
            # Three refusals take the dead replica out of rotation (not probed again for 600 s): every later
            # request goes straight to the live one, and each refused one was retried on the live one.
            assert sum(r.attempts for r in results) == 12 + 3
            states = {s["url"]: s["state"] for s in c.router.snapshot()}
            assert states[dead] == "down" and states[srv.base_url] == "up"

    asyncio.run(go())


def test_endpoint_spec_validates() -> None:
    assert EndpointSpec("a", "http://h/v1", "m").base_urls == ("http://h/v1",)  # type: ignore[arg-type]
    for kwargs in ({"base_urls": ()}, {"base_urls": ("ftp://h",)}, {"base_urls": ("http://h", "http://h")},
                   {"max_concurrency": 0}, {"timeout_s": 0}, {"max_retries": -1}):
        args = {"name": "a", "base_urls": ("http://h/v1",), "model": "m", **kwargs}
        with pytest.raises(ConfigError) as info:
            EndpointSpec(**args)
        assert "endpoint 'a'" in str(info.value)


def test_closed_client_refuses_requests() -> None:
    async def go() -> None:
        c = client(spec("http://127.0.0.1:9/v1"))
        await c.aclose()
        with pytest.raises(RuntimeError):
            await c.complete(MESSAGES)

    asyncio.run(go())


def test_survives_the_scripted_teachers_fault_mix_and_accounts_for_every_fault(scripted_teacher) -> None:
    server = scripted_teacher(fault_429=0.2, retry_after=0.05, fault_500=0.05, fault_hang=0.02, hang_s=3.0,
                              fault_malformed=0.01, fault_drop=0.01, seed=7)

    async def go() -> tuple[list, ChatClient, AdaptiveLimiter]:
        limiter = AdaptiveLimiter.local(initial=32, ceiling=32)
        s = EndpointSpec("scripted", (server.base_url,), "scripted-teacher-1", KEY, max_concurrency=32, timeout_s=0.5,
                         max_retries=12)
        async with client(s, limiter=limiter) as c:
            msgs = [[{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": f"How do tides work? ({i})"}] for i in range(200)]
            results = await asyncio.gather(*(c.complete(m, n=2, max_tokens=64, seed=i) for i, m in enumerate(msgs)))
        return results, c, limiter

    results, c, limiter = asyncio.run(go())
    assert len(results) == 200 and all(len(r.texts) == len(r.finish_reasons) == 2 for r in results)
    outcomes = server.stats()["by_outcome"]
    snap = c.stats.snapshot()
    # Every fault the server injected was seen, classified and retried exactly once: nothing hidden, nothing lost.
    expected = {"http_429": outcomes.get("429", 0), "http_5xx": outcomes.get("500", 0), "timeout": outcomes.get("hang", 0),
                "malformed": outcomes.get("malformed", 0), "connection": outcomes.get("drop", 0)}
    assert snap["retries_by_kind"] == {k: v for k, v in expected.items() if v}
    assert snap["attempts"] == server.stats()["requests"] == 200 + sum(expected.values())
    assert (snap["ok"], snap["failed"], snap["in_flight"], limiter.in_flight) == (200, 0, 0, 0)
    assert limiter.controller.snapshot()["decreases_by_kind"].get("http_429", 0) >= 1
