"""The scripted teacher's HTTP server: an aiohttp app speaking the OpenAI Chat Completions API.

Endpoints: POST /v1/chat/completions, GET /v1/models, GET /stats, POST /stats/reset, GET /health. Each 200
chat answer also carries an `X-Scripted-Modes` header (the response mode of every choice, or "judge"/"rewrite"),
so tests and benchmarks can check the mode mix without grading.

`ScriptedTeacherServer` runs it either in a background thread with its own event loop (tests, the embedded
default run) or on the caller's loop (`start_async`, used by the CLI command). The hot path avoids pydantic
and serialises each answer once with `json.dumps`, so one core serves thousands of requests per second.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from aiohttp import web

from pipeline.records import RESPONSE_MODES
from pipeline.scripted_teacher import responses as R
from pipeline.scripted_teacher.config import ScriptedTeacherConfig
from pipeline.scripted_teacher.faults import (
    OUTCOMES,
    RATE_LIMIT_BODY,
    SERVER_ERROR_BODY,
    FaultInjector,
    malformed_body,
)
from pipeline.scripted_teacher.rewrites import rewrite_content

KINDS = ("chat", "judge", "rewrite")
DEFAULT_MODEL = "scripted-teacher"
MAX_N = 128
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_JSON = "application/json"


class TeacherStats:
    """Request counters. Mutated only on the server's loop; `snapshot()` may be read from any thread."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.by_outcome = dict.fromkeys((*OUTCOMES, "400"), 0)
        self.by_mode = dict.fromkeys((*RESPONSE_MODES, R.EMPTY), 0)
        self.completions = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.judge_invalid = 0
        self.max_in_flight = self.in_flight

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_kind": dict(self.by_kind),
            "by_outcome": dict(self.by_outcome),
            "by_mode": dict(self.by_mode),
            "completions": self.completions,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "judge_invalid": self.judge_invalid,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


def error_response(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error") -> web.Response:
    body = json.dumps({"error": {"message": message, "type": kind, "param": param, "code": None}})
    return web.Response(status=status, text=body, content_type=_JSON)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_body(body: Any) -> tuple[str, str | None] | None:
    """(message, param) for the first problem in a chat request body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return "request body must be a JSON object", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required and must be a non-empty string", "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is required and must be a non-empty array", "messages"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return f"messages[{i}] must be an object with a valid 'role'", f"messages[{i}].role"
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return f"messages[{i}].content must be a string or an array of parts", f"messages[{i}].content"
    n = body.get("n", 1)
    if n is not None and not (_is_int(n) and 1 <= n <= MAX_N):
        return f"'n' must be an integer between 1 and {MAX_N}", "n"
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and not (_is_int(v) and v >= 1):
            return f"'{name}' must be a positive integer", name
    for name, hi in (("temperature", 2.0), ("top_p", 1.0)):
        v = body.get(name)
        if v is not None and not (_is_number(v) and 0.0 <= v <= hi):
            return f"'{name}' must be a number between 0 and {hi:g}", name
    if body.get("seed") is not None and not _is_int(body["seed"]):
        return "'seed' must be an integer", "seed"
    rf = body.get("response_format")
    if rf is not None and not (isinstance(rf, dict) and rf.get("type") in ("text", "json_object", "json_schema")):
        return "'response_format.type' must be one of text, json_object, json_schema", "response_format"
    if body.get("stream"):
        return "streaming is not supported by the scripted teacher", "stream"
    return None


class TeacherApp:
    """Handlers plus the per-server state they share (fault RNG, counters, model names seen)."""

    def __init__(self, config: ScriptedTeacherConfig) -> None:
        self.config = config
        self.faults = FaultInjector(config)
        self.stats = TeacherStats()
        self.models: dict[str, int] = {DEFAULT_MODEL: int(time.time())}
        self._counter = 0
        self._id_prefix = os.urandom(6).hex()  # ids unique across servers, like real completion ids

    def build(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/stats", self.get_stats)
        app.router.add_post("/stats/reset", self.reset_stats)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text='{"status":"ok"}', content_type=_JSON)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self.stats.snapshot()), content_type=_JSON)

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.Response(text=json.dumps(self.stats.snapshot()), content_type=_JSON)

    async def list_models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": t, "owned_by": "scripted-teacher"} for m, t in self.models.items()]
        return web.Response(text=json.dumps({"object": "list", "data": data}), content_type=_JSON)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        st = self.stats
        st.requests += 1
        st.in_flight += 1
        if st.in_flight > st.max_in_flight:
            st.max_in_flight = st.in_flight
        try:
            return await self._chat(request)
        finally:
            st.in_flight -= 1

    def _bad(self, message: str, param: str | None = None) -> web.Response:
        self.stats.by_outcome["400"] += 1
        return error_response(400, message, param=param)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        st, cfg = self.stats, self.config
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return self._bad("request body is not valid JSON")
        problem = validate_body(body)
        if problem is not None:
            return self._bad(*problem)
        model: str = body["model"]
        messages: list[dict[str, Any]] = body["messages"]
        n: int = body.get("n") or 1
        seed = body.get("seed")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        kind = R.request_kind(messages, body.get("response_format"))
        st.by_kind[kind] += 1
        if model not in self.models:
            self.models[model] = int(time.time())

        outcome = self.faults.draw()
        st.by_outcome[outcome] += 1
        if outcome == "429":
            return web.Response(status=429, body=RATE_LIMIT_BODY, content_type=_JSON, headers=self.faults.retry_after_headers)
        if outcome == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never sent: the connection is already closed
        if outcome == "500":
            if cfg.latency_base > 0:
                await asyncio.sleep(cfg.latency_base)
            return web.Response(status=500, body=SERVER_ERROR_BODY, content_type=_JSON)

        try:
            texts, finishes, modes, tokens = self._answer(kind, model, messages, seed, n, max_tokens)
        except R.BadRequest as exc:
            st.by_outcome[outcome] -= 1
            return self._bad(str(exc), exc.param)
        except R.JudgeUnavailable as exc:
            st.by_outcome[outcome] -= 1
            st.by_outcome["500"] += 1
            return error_response(500, str(exc), kind="server_error")

        completion_tokens = sum(tokens)
        prompt_tokens = sum(R.count_tokens(R.content_text(m.get("content"))) for m in messages)
        delay = self.faults.latency(completion_tokens)
        if outcome == "hang":
            delay += cfg.hang_s
        if delay > 0:
            await asyncio.sleep(delay)

        self._counter += 1
        payload = {
            "id": f"chatcmpl-{self._id_prefix}{self._counter:012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": t, "refusal": None},
                    "logprobs": None,
                    "finish_reason": f,
                }
                for i, (t, f) in enumerate(zip(texts, finishes))
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        data = json.dumps(payload, ensure_ascii=False).encode()
        if outcome == "malformed":
            return web.Response(body=malformed_body(data), content_type=_JSON)
        st.completions += n
        st.prompt_tokens += prompt_tokens
        st.completion_tokens += completion_tokens
        if kind == "chat":
            for m in modes:
                st.by_mode[m] += 1
        return web.Response(body=data, content_type=_JSON, headers={"X-Scripted-Modes": ",".join(modes)})

    def _answer(
        self, kind: str, model: str, messages: list[dict[str, Any]], seed: int | None, n: int, max_tokens: int | None
    ) -> tuple[list[str], list[str], list[str], list[int]]:
        """(texts, finish_reasons, modes, completion tokens) of the n choices."""
        if kind == "chat":
            choices = R.chat_choices(model, messages, seed, n, max_tokens)
            return (
                [c.text for c in choices],
                [c.finish_reason for c in choices],
                [c.mode for c in choices],
                [c.tokens for c in choices],
            )
        texts, finishes, tokens = [], [], []
        for i in range(n):
            if kind == "judge":
                content = R.judge_content(messages, seed, i, self.config.policy_path)
                if self.faults.judge_invalid():
                    self.stats.judge_invalid += 1
                    content = self.faults.invalid_judge_content(content)
            else:
                content = rewrite_content(messages, seed, i)
            text, finish, count = R.truncate(content, max_tokens)
            texts.append(text)
            finishes.append(finish)
            tokens.append(count)
        return texts, finishes, [kind] * n, tokens


class ScriptedTeacherServer:
    """A running scripted teacher on host:port (0 = a free port). `start()` returns the base URL ending in /v1."""

    def __init__(
        self, config: ScriptedTeacherConfig | None = None, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 4096
    ) -> None:
        self.config = config or ScriptedTeacherConfig()
        self.host = host
        self.port = port
        self.backlog = backlog
        self.app = TeacherApp(self.config)
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start_async(self) -> str:
        """Serve on the running event loop; returns the base URL."""
        # handler_cancellation: a client that gives up (e.g. times out on a hang) frees its handler at once.
        runner = web.AppRunner(self.app.build(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=self.backlog, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{self.host if self.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}/v1"
        return self.base_url

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> str:
        """Serve from a background thread with its own event loop; returns the base URL once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("scripted teacher already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            leftover = asyncio.all_tasks(loop)  # handlers still sleeping (hangs) when the runner gave up on them
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="scripted-teacher", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        assert self.base_url is not None
        return self.base_url

    def stop(self) -> None:
        """Stop serving (in-flight requests get at most 0.5 s) and join the thread. Safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = self._loop = None

    def stats(self) -> dict[str, Any]:
        return self.app.stats.snapshot()

    def __enter__(self) -> "ScriptedTeacherServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
