"""`python -m pipeline scripted-teacher`: serve the bundled OpenAI-compatible scripted teacher until interrupted."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scripted-teacher",
        help="serve the bundled OpenAI-compatible scripted teacher (for local runs, tests, benchmarks)",
        description="Serve a deterministic teacher speaking the OpenAI Chat Completions API on /v1, with an "
        "optional latency model and fault injection (429, 500, hangs, malformed bodies, dropped connections). "
        "Prints 'scripted-teacher listening on URL' and serves until SIGINT/SIGTERM. Counters: GET /stats.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free port (default 0)")
    p.add_argument("--latency-base", type=float, default=0.0, metavar="S", help="seconds added to every answer")
    p.add_argument("--latency-per-token", type=float, default=0.0, metavar="S", help="seconds per completion token")
    p.add_argument("--jitter", type=float, default=0.0, metavar="S", help="uniform extra latency in [0, S]")
    p.add_argument("--fault-429", type=float, default=0.0, metavar="RATE", help="share of requests answered 429")
    p.add_argument("--retry-after", type=float, default=1.0, metavar="S", help="Retry-After seconds on 429s")
    p.add_argument("--fault-500", type=float, default=0.0, metavar="RATE", help="share of requests answered 500")
    p.add_argument("--fault-hang", type=float, default=0.0, metavar="RATE", help="share that hang for --hang-s first")
    p.add_argument("--hang-s", type=float, default=120.0, metavar="S", help="how long a hang lasts (default 120)")
    p.add_argument("--fault-malformed", type=float, default=0.0, metavar="RATE", help="share answered with broken JSON")
    p.add_argument("--fault-drop", type=float, default=0.0, metavar="RATE", help="share whose connection is closed")
    p.add_argument(
        "--fault-judge-invalid", type=float, default=0.0, metavar="RATE", help="share of judge answers that are not valid JSON"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fault and jitter draws (default 0)")
    p.add_argument("--policy", default=None, metavar="PATH", help="policy spec the judge grades with (default: bundled)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from pipeline.scripted_teacher import ScriptedTeacherConfig

    config = ScriptedTeacherConfig(
        latency_base=args.latency_base,
        latency_per_token=args.latency_per_token,
        jitter=args.jitter,
        fault_429=args.fault_429,
        retry_after=args.retry_after,
        fault_500=args.fault_500,
        fault_hang=args.fault_hang,
        hang_s=args.hang_s,
        fault_malformed=args.fault_malformed,
        fault_drop=args.fault_drop,
        fault_judge_invalid=args.fault_judge_invalid,
        seed=args.seed,
        policy_path=args.policy,
    )
    asyncio.run(_serve(config, args.host, args.port))
    return 0


async def _serve(config: object, host: str, port: int) -> None:
    import asyncio
    import signal

    from pipeline.errors import ConfigError
    from pipeline.scripted_teacher import ScriptedTeacherServer

    _raise_open_file_limit()
    server = ScriptedTeacherServer(config, host, port)  # type: ignore[arg-type]
    try:
        url = await server.start_async()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", where="--port", hint="pick another port, or 0 for a free one"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"scripted-teacher listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop_async()


def _raise_open_file_limit() -> None:
    """Thousands of concurrent client connections need as many descriptors: lift the soft limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass
