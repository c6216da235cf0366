"""The bundled scripted teacher: a real HTTP server speaking the OpenAI Chat Completions API.

It answers chat requests in three styles (helpful, safe-completion, refusal-boundary) with deterministic,
varied texts, grades judge requests with the rules checker, writes rewrite requests, and injects latency and
faults (429, 500, hangs, malformed bodies, dropped connections) so the default run, the tests and the
benchmarks exercise the real request path without any external endpoint.
"""

from pipeline.scripted_teacher.config import ScriptedTeacherConfig
from pipeline.scripted_teacher.server import ScriptedTeacherServer

__all__ = ["ScriptedTeacherConfig", "ScriptedTeacherServer"]
