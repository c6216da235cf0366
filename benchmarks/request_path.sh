#!/usr/bin/env bash
# Issue 5 request-path benchmark: the pipeline's request path, plain openai.AsyncOpenAI and a bare aiohttp loop,
# same scripted teacher (0.5 s latency, its own process), 256 and 1,024 requests in flight.
# Usage: benchmarks/request_path.sh [REQUESTS] [ROUNDS]   (results: benchmarks/results/request_path_c*.json)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
REQUESTS=${1:-8192}  # a multiple of both concurrencies, so the last wave is full
REPEAT=${2:-3}      # interleaved rounds; each figure is the median round
for C in 256 1024; do
  "$PY" -m pipeline bench --mode request --latency-base 0.5 --requests "$REQUESTS" --concurrency "$C" --repeat "$REPEAT" \
    --json "benchmarks/results/request_path_c${C}.json"
done
