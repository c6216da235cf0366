"""`ray job submit` against a real single-node Ray cluster started with `ray start --head`, token auth on."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import REPO, small_config

pytestmark = pytest.mark.slow
EXCLUDES = [".venv", "outputs", ".git", "**/__pycache__", ".pytest_cache"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A real head node (own temp dir and ports, token auth); every process of it is stopped afterwards."""
    bin_dir = Path(sys.executable).parent
    token_file = tmp_path / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths have a length limit
    gcs, dash, agent = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token_file), "RAY_ADDRESS": ""}
    head = subprocess.Popen(
        [str(bin_dir / "ray"), "start", "--head", "--block", f"--port={gcs}", f"--dashboard-port={dash}",
         "--dashboard-host=127.0.0.1", "--include-dashboard=true",
         f"--dashboard-agent-listen-port={agent}", "--num-cpus=2", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert head.poll() is None, head.stdout.read()
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2)
            break
        except urllib.error.HTTPError:  # it answers (401 without the token): up
            break
        except OSError:
            time.sleep(1)
    else:
        raise AssertionError("the Ray head never answered")
    try:
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        for proc in psutil.process_iter(["cmdline"]):  # and anything of this cluster that outlived it
            if any(temp_dir in part for part in (proc.info["cmdline"] or [])):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(address: str, env: dict, *entrypoint: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Submit and wait; retried while the head's job agent is still starting (it comes up after the dashboard)."""
    deadline = time.monotonic() + 120
    while True:
        proc = _submit_once(address, env, *entrypoint, timeout=timeout)
        if "No available agent" not in proc.stderr or time.monotonic() > deadline:
            return proc
        time.sleep(2)


def _submit_once(address: str, env: dict, *entrypoint: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", address, "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"excludes": EXCLUDES}), "--", *entrypoint],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_ray_job_submit_writes_a_complete_version(ray_head, scripted_teacher, seed_subset, tmp_path):
    address, env = ray_head
    server = scripted_teacher()
    cfg = small_config(tmp_path, seed_subset, server.base_url)
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    out = tmp_path / "job-out"

    anonymous = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    anonymous["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "no-such-token")
    refused = subprocess.run([str(Path(sys.executable).parent / "ray"), "job", "list", "--address", address],
                             env={**anonymous, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0, "the job API answered without the auth token"

    proc = _submit(address, env, "python", "-m", "pipeline", "run", "--config", str(config), "--output", str(out), "--no-live")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in (proc.stdout + proc.stderr).lower()
    versions = list((out / cfg.dataset).glob("v*"))
    assert len(versions) == 1
    manifest = json.loads((versions[0] / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    c = manifest["counts"]
    assert c["kept"] + c["rejected"] == c["prompts"] > 0
    assert server.stats()["requests"] > 0
