"""The cluster files users copy: ray_cluster.yaml, configs/serve_teachers.yaml, configs/cluster.example.yaml, and
the commands of docs/CLUSTER.md.

They are checked against Ray's own schema and helpers (ray-schema.json, prepare_config/validate_config, the Serve
LLM placement model, the `ray` click CLI, runtime-env excludes, the auth-token loader), against each other
(node types, custom resources, model ids, the router address), and their shell commands are run for real in a
temporary HOME with stand-ins for `aws` and `sudo`. No network, no Ray cluster.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import ray
import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER_YAML = REPO / "ray_cluster.yaml"
SERVE_YAML = REPO / "configs" / "serve_teachers.yaml"
RUN_CONFIG = REPO / "configs" / "cluster.example.yaml"
CLUSTER_DOC = REPO / "docs" / "CLUSTER.md"
RAY_DIR = Path(ray.__file__).resolve().parent

# (vCPUs, GPUs, Ray accelerator type) of the EC2 instance types this config may use; extend when you switch.
KNOWN_INSTANCES: dict[str, tuple[int, int, str | None]] = {
    "m6i.2xlarge": (8, 0, None),
    "m6i.4xlarge": (16, 0, None),
    "m6i.8xlarge": (32, 0, None),
    "p4d.24xlarge": (96, 8, "A100"),
    "p4de.24xlarge": (96, 8, "A100"),
    "p5.48xlarge": (192, 8, "H100"),
    "g5.12xlarge": (48, 4, "A10G"),
    "g5.48xlarge": (192, 8, "A10G"),
    "g6.12xlarge": (48, 4, "L4"),
    "g6e.12xlarge": (48, 4, "L40S"),
}
ACCEL_PREFIX = "accelerator_type:"


# -- loading ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prepared(cluster: dict) -> dict:
    """The config as `ray up` sees it after Ray fills in defaults and merges setup commands."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(cluster))


@pytest.fixture(scope="module")
def serve() -> dict:
    return yaml.safe_load(SERVE_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def llm_configs(serve: dict) -> list[dict]:
    apps = [a for a in serve["applications"] if a["import_path"] == "ray.serve.llm:build_openai_app"]
    assert len(apps) == 1, "expected one Ray Serve LLM OpenAI app (one router for every model)"
    return apps[0]["args"]["llm_configs"]


def _worker_types(cfg: dict) -> dict[str, dict]:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def _only(commands: list[str], needle: str) -> str:
    found = [c for c in commands if needle in c]
    assert len(found) == 1, f"expected exactly one command containing {needle!r}, found {found}"
    return found[0]


# -- Ray's schema and helpers ----------------------------------------------------------------------------------


def test_cluster_yaml_matches_rays_schema(cluster: dict) -> None:
    schema = json.loads((RAY_DIR / "autoscaler" / "ray-schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(cluster)]
    assert not errors, "ray_cluster.yaml does not match ray-schema.json:\n" + "\n".join(errors)


def test_rays_prepare_and_validate_accept_it(prepared: dict) -> None:
    from ray.autoscaler._private.util import validate_config

    validate_config(prepared)  # schema again on the filled config, head type membership, sum of min_workers
    assert prepared["provider"]["type"] == "aws"
    assert prepared["provider"]["region"] and prepared["provider"]["availability_zone"]
    assert prepared["available_node_types"][prepared["head_node_type"]]["max_workers"] == 0


# -- node types --------------------------------------------------------------------------------------------------


def test_head_is_cpu_only_and_gpu_workers_scale(prepared: dict) -> None:
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]["resources"]
    assert head.get("GPU", 0) == 0 and not any(k.startswith(ACCEL_PREFIX) for k in head), head
    assert head.get("CPU", 0) >= 4, "the head runs the driver, the Serve router and the worker actors"

    workers = _worker_types(prepared)
    gpu_workers = {k: v for k, v in workers.items() if v["resources"].get("GPU", 0) > 0}
    assert len(gpu_workers) >= 2, "expected GPU node types for the teacher and the judge"
    for name, nt in workers.items():
        assert 0 <= nt["min_workers"] <= nt["max_workers"] <= prepared["max_workers"], name
        assert nt["max_workers"] >= 1, f"{name} can never start"
    assert sum(nt["min_workers"] for nt in workers.values()) <= prepared["max_workers"]


def test_declared_resources_match_the_instance_types(cluster: dict) -> None:
    for name, nt in cluster["available_node_types"].items():
        itype = nt["node_config"]["InstanceType"]
        assert itype in KNOWN_INSTANCES, f"{name}: add {itype} (vCPUs, GPUs, accelerator) to KNOWN_INSTANCES"
        vcpus, gpus, accel = KNOWN_INSTANCES[itype]
        res = nt["resources"]
        assert res.get("CPU", vcpus) <= vcpus, f"{name} declares more CPUs than a {itype} has"
        assert res.get("GPU", 0) == gpus, f"{name} declares {res.get('GPU', 0)} GPUs, a {itype} has {gpus}"
        declared = sorted(k.removeprefix(ACCEL_PREFIX) for k in res if k.startswith(ACCEL_PREFIX))
        assert declared == ([accel] if accel else []), f"{name}: accelerator_type resource {declared} vs {itype}"


# -- the Serve config against the node types -------------------------------------------------------------------


def _class_fields(path: Path, class_name: str) -> set[str]:
    """Annotated field names of a pydantic class in Ray's installed source (read, not imported: vLLM is absent)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    raise AssertionError(f"{class_name} not found in {path}")


def test_serve_config_uses_only_real_serve_llm_fields(serve: dict, llm_configs: list[dict]) -> None:
    schema_py = RAY_DIR / "serve" / "schema.py"
    llm_py = RAY_DIR / "llm" / "_internal" / "serve" / "core" / "configs" / "llm_config.py"
    assert set(serve) <= _class_fields(schema_py, "ServeDeploySchema")
    for app in serve["applications"]:
        assert set(app) <= _class_fields(schema_py, "ServeApplicationSchema")
    assert "def build_openai_app(" in (RAY_DIR / "serve" / "llm" / "__init__.py").read_text(encoding="utf-8")

    llm_fields = _class_fields(llm_py, "LLMConfig")
    loading_fields = _class_fields(llm_py, "ModelLoadingConfig")
    autoscaling_fields = _class_fields(RAY_DIR / "serve" / "config.py", "AutoscalingConfig")
    # The deployment options LLMConfig accepts are listed in its field description.
    desc = re.search(r"deployment_config: .*?\"\"\"(.*?)\"\"\"", llm_py.read_text(encoding="utf-8"), re.S)
    assert desc, "LLMConfig.deployment_config description not found"
    deployment_fields = set(re.findall(r"`(\w+)`", desc.group(1)))
    assert {"autoscaling_config", "ray_actor_options"} <= deployment_fields
    for c in llm_configs:
        assert set(c) <= llm_fields, set(c) - llm_fields
        assert set(c["model_loading_config"]) <= loading_fields
        assert set(c["deployment_config"]) <= deployment_fields, set(c["deployment_config"]) - deployment_fields
        assert set(c["deployment_config"].get("autoscaling_config", {})) <= autoscaling_fields


def test_router_is_one_address_on_the_head(serve: dict) -> None:
    assert serve["proxy_location"] == "HeadOnly", "the run config needs one stable router address"
    assert serve["http_options"]["host"] == "0.0.0.0", "the other nodes must reach the router"


def _replica_demand(c: dict) -> dict[str, float]:
    """Resources one replica's placement group needs, as Ray Serve LLM builds it (vllm_models.placement_bundles
    plus the replica actor merged into the first bundle, llm_server.get_deployment_options)."""
    from ray.llm._internal.common.placement import PlacementGroupConfig
    from ray.util.accelerators import accelerators

    pg = PlacementGroupConfig(**c["placement_group_config"])
    assert pg.strategy == "STRICT_PACK", "a tensor-parallel engine must sit on one node"
    assert pg.bundle_per_worker is not None, "bundle_per_worker (replicated tp*pp times) expected"
    accel = c.get("accelerator_type")
    known = {v for k, v in vars(accelerators).items() if k.isupper() and isinstance(v, str)}
    assert accel in known, f"unknown accelerator_type {accel!r}"
    kw = c.get("engine_kwargs", {})
    devices = kw.get("tensor_parallel_size", 1) * kw.get("pipeline_parallel_size", 1)
    demand: dict[str, float] = {}
    bundle = pg.bundle_per_worker.model_dump()
    for _ in range(devices):
        for k, v in {**bundle, f"{ACCEL_PREFIX}{accel}": 0.001}.items():
            demand[k] = demand.get(k, 0) + v
    actor = c["deployment_config"].get("ray_actor_options", {})
    replica_actor = {"CPU": actor.get("num_cpus", 1), "GPU": actor.get("num_gpus", 0), **actor.get("resources", {})}
    for k, v in replica_actor.items():
        demand[k] = demand.get(k, 0) + v
    return {k: v for k, v in demand.items() if v}


def test_every_model_fits_exactly_one_gpu_node_type(cluster: dict, prepared: dict, llm_configs: list[dict]) -> None:
    workers = _worker_types(prepared)
    for c in llm_configs:
        model = c["model_loading_config"]["model_id"]
        demand = _replica_demand(c)
        custom = set(demand) - {"CPU", "GPU"} - {k for k in demand if k.startswith(ACCEL_PREFIX)}
        assert custom, f"{model}: ask for a custom resource that pins the replica to one node type"
        hosts = [n for n, nt in workers.items() if all(nt["resources"].get(k, 0) >= v for k, v in demand.items())]
        assert len(hosts) == 1, f"{model} needs {demand}; node types that can host it: {hosts}"
        node = workers[hosts[0]]
        per_node = min(int(node["resources"][k] // demand[k]) for k in custom)
        auto = c["deployment_config"]["autoscaling_config"]
        assert 1 <= auto["min_replicas"] <= auto["max_replicas"]
        assert auto["max_replicas"] <= per_node * node["max_workers"], (
            f"{model}: max_replicas {auto['max_replicas']} but {hosts[0]} holds {per_node} x {node['max_workers']}")
    ids = [c["model_loading_config"]["model_id"] for c in llm_configs]
    assert len(set(ids)) == len(ids)
    # Nodes for every model at its max_replicas fit under the global cap.
    assert sum(nt["max_workers"] for nt in _worker_types(cluster).values()) <= cluster["max_workers"]


# -- the run config ---------------------------------------------------------------------------------------------


def test_run_config_loads_and_points_every_endpoint_at_the_router(serve: dict, llm_configs: list[dict]) -> None:
    from pipeline.config import load_config

    cfg = load_config(RUN_CONFIG)
    assert urlparse(cfg.output).scheme in ("s3", "gs"), "on a cluster the output must be shared storage"
    port = serve["http_options"]["port"]
    served = {c["model_loading_config"]["model_id"] for c in llm_configs}
    endpoints = [*cfg.teachers, *([cfg.judge] if cfg.judge else [])]
    assert cfg.checker in ("judge", "ensemble") and cfg.judge is not None, "a judge model is deployed: use it"
    for ep in endpoints:
        for url in ep.base_urls:
            u = urlparse(url)
            assert (u.hostname, u.port, u.path) == ("ray-head", port, "/v1"), url
        assert ep.model in served, f"{ep.name}: model {ep.model!r} is not deployed ({sorted(served)})"
    assert {ep.model for ep in endpoints} == served, "every deployed model holds GPUs: the run should use it"
    assert cfg.ray.address is None, "`ray job submit` provides RAY_ADDRESS"


# -- token authentication and secrets --------------------------------------------------------------------------


def _node_commands(cfg: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
            "head_start_ray_commands", "worker_start_ray_commands")
    cmds = [c for k in keys for c in cfg.get(k, [])]
    for nt in cfg["available_node_types"].values():
        cmds += nt.get("initialization_commands", []) + nt.get("worker_setup_commands", [])
    return cmds


def test_every_ray_start_runs_with_token_auth(cluster: dict) -> None:
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = _only(cluster[key], "ray start")
        assert re.search(r"\bRAY_AUTH_MODE=token\b.*\bray start\b", start), f"{key}: {start}"
    for cmd in _node_commands(cluster):
        assert "RAY_AUTH_MODE=disabled" not in cmd
        assert "--generate" not in cmd, "a node generating its own token would not match the others"
        assert "RAY_AUTH_TOKEN" not in cmd, "the token reaches nodes as a file, never on a command line"


def _fake_aws(tmp: Path, values: dict[str, str]) -> dict[str, str]:
    """An `aws` stand-in on PATH that answers `secretsmanager get-secret-value` like the real CLI (text output)."""
    store = tmp / "secrets"
    store.mkdir()
    for sid, value in values.items():
        (store / sid.replace("/", "__")).write_text(value, encoding="utf-8")
    bindir = tmp / "bin"
    bindir.mkdir()
    aws = bindir / "aws"
    aws.write_text(
        "#!/bin/bash\n"
        'echo "$*" >> "$FAKE_AWS_LOG"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --secret-id ] && sid="$2"; shift; done\n'
        'f="$FAKE_AWS_STORE/${sid//\\//__}"\n'
        '[ -f "$f" ] || { echo "ResourceNotFoundException: $sid" >&2; exit 254; }\n'
        'cat "$f"; echo\n',
        encoding="utf-8",
    )
    aws.chmod(0o755)
    home = tmp / "home"
    home.mkdir()
    return {"HOME": str(home), "PATH": f"{bindir}:/usr/bin:/bin", "FAKE_AWS_STORE": str(store),
            "FAKE_AWS_LOG": str(tmp / "aws.log"), "LANG": "C.UTF-8"}


def _bash(cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _secret_ids(cmd: str) -> list[str]:
    return re.findall(r"--secret-id\s+(\S+)", cmd)


def test_the_token_lands_where_ray_reads_it(tmp_path: Path, prepared: dict) -> None:
    fetch = _only(prepared["setup_commands"], "auth_token")
    assert fetch in prepared["head_setup_commands"] and fetch in prepared["worker_setup_commands"]
    token = secrets.token_hex(32)  # the format `ray get-auth-token --generate` produces
    env = _fake_aws(tmp_path, {sid: token for sid in _secret_ids(fetch)})
    done = _bash(fetch, env)
    assert done.returncode == 0, done.stderr
    path = Path(env["HOME"]) / ".ray" / "auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth_token"], "temporary file left behind"
    # Ray's own loader, in token mode and with nothing else configured, must send exactly this token.
    code = ("from ray._raylet import AuthenticationTokenLoader as L; "
            "print(L.instance().get_token_for_http_header()['authorization'])")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    assert _python(code, {**clean, "HOME": env["HOME"], "RAY_AUTH_MODE": "token"}) == f"Bearer {token}"
    assert token not in done.stdout + done.stderr


def test_a_missing_token_secret_fails_setup_and_writes_nothing(tmp_path: Path, prepared: dict) -> None:
    env = _fake_aws(tmp_path, {})
    done = _bash(_only(prepared["setup_commands"], "auth_token"), env)
    assert done.returncode != 0
    ray_dir = Path(env["HOME"]) / ".ray"
    assert not ray_dir.exists() or not any(ray_dir.iterdir()), "ray start must not find a token after a failed fetch"


def test_the_hf_token_lands_where_huggingface_hub_reads_it(tmp_path: Path, prepared: dict) -> None:
    fetch = _only(prepared["worker_setup_commands"], "huggingface")
    assert fetch not in prepared["head_setup_commands"], "only the model hosts need the Hub token"
    value = "hf_" + secrets.token_urlsafe(24)
    env = _fake_aws(tmp_path, {sid: value for sid in _secret_ids(fetch)})
    done = _bash(fetch, env)
    assert done.returncode == 0, done.stderr
    clean = {k: v for k, v in os.environ.items()
             if k not in ("HF_TOKEN", "HF_HOME", "HF_TOKEN_PATH", "XDG_CACHE_HOME", "HUGGING_FACE_HUB_TOKEN")}
    got = _python("import huggingface_hub; print(huggingface_hub.get_token())", {**clean, "HOME": env["HOME"]})
    assert got == value


def test_secret_names_are_the_ones_the_docs_create(cluster: dict) -> None:
    ids = {sid for cmd in _node_commands(cluster) for sid in _secret_ids(cmd)}
    assert len(ids) == 2, ids
    created = set(re.findall(r"create-secret\b.*?--name\s+(\S+)", _joined_doc(), re.S))
    assert ids <= created, f"docs/CLUSTER.md must tell users to create {sorted(ids - created)}"


def test_shell_environment_lines(tmp_path: Path, cluster: dict) -> None:
    cmd = _only(cluster["setup_commands"], ".bashrc")
    env = _fake_aws(tmp_path, {})
    for _ in range(2):  # `ray up` reruns setup: lines must not pile up
        assert _bash(cmd, env).returncode == 0
    lines = (Path(env["HOME"]) / ".bashrc").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines))
    assert "export RAY_AUTH_MODE=token" in lines
    assert f"export AWS_DEFAULT_REGION={cluster['provider']['region']}" in lines
    assert any(re.match(r'export PATH="\$HOME/venv/bin:', line) for line in lines)


def test_ray_head_resolves_to_the_head_on_every_node(tmp_path: Path, cluster: dict) -> None:
    from ray.autoscaler._private.util import with_head_node_ip

    from pipeline.config import load_config

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.9.9.9 ray-head\n", encoding="utf-8")
    env = _fake_aws(tmp_path, {})
    sudo = tmp_path / "bin" / "sudo"  # runs the command with /etc/hosts swapped for the temporary file
    sudo.write_text('#!/bin/bash\nargs=()\nfor a in "$@"; do args+=("${a//\\/etc\\/hosts/$FAKE_HOSTS}"); done\n'
                    'exec "${args[@]}"\n', encoding="utf-8")
    sudo.chmod(0o755)
    env["FAKE_HOSTS"] = str(hosts)
    cmd = _only(cluster["setup_commands"], "/etc/hosts")
    for _ in range(2):  # exactly as the autoscaler runs it on a worker, twice
        done = _bash(with_head_node_ip([cmd], "10.1.2.3")[0], env)
        assert done.returncode == 0, done.stderr
    assert hosts.read_text(encoding="utf-8").splitlines() == ["127.0.0.1 localhost", "10.1.2.3 ray-head"]
    names = {urlparse(u).hostname for ep in [*load_config(RUN_CONFIG).teachers] for u in ep.base_urls}
    assert names == {"ray-head"}

    head = _bash(cmd, env)  # on the head no RAY_HEAD_IP is exported: it names itself
    assert head.returncode == 0, head.stderr
    entries = [ln for ln in hosts.read_text(encoding="utf-8").splitlines() if ln.endswith(" ray-head")]
    assert len(entries) == 1 and entries[0] != "10.1.2.3 ray-head"


def test_project_is_installed_on_every_node(cluster: dict, prepared: dict) -> None:
    remote = [r for r, local in cluster["file_mounts"].items() if local in (".", "./")]
    assert len(remote) == 1, "the working tree must be mounted on the nodes"
    install = _only(prepared["setup_commands"], "pip install")
    assert remote[0] in shlex.split(install), "setup must install the mounted project"
    assert re.search(r"ray\[[^\]]*\bllm\b[^\]]*\]==" + re.escape(ray.__version__), install), "same Ray as here"
    assert install in prepared["head_setup_commands"] and install in prepared["worker_setup_commands"]
    assert {".venv", "outputs", ".git"} <= set(cluster["rsync_exclude"])


# -- no secret literals -----------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "hex token (Ray auth tokens are 64 hex digits)": r"\b[0-9a-fA-F]{32,}\b",
    "Hugging Face token": r"\bhf_[A-Za-z0-9]{20,}",
    "OpenAI-style key": r"\bsk-[A-Za-z0-9_-]{16,}",
    "AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "secret assigned inline": r"(?i)(?:token|secret|password|passwd|api[_-]?key)[\"']?\s*[:=]\s*[\"']?"
                              r"(?=[A-Za-z/+_.\-]*[0-9])[A-Za-z0-9/+_.\-]{16,}",
    "long random-looking string": r"(?=[A-Za-z0-9+/_\-]*[0-9])(?=[A-Za-z0-9+/_\-]*[a-z])(?=[A-Za-z0-9+/_\-]*[A-Z])"
                                  r"\b[A-Za-z0-9+/_\-]{32,}",
}


def _secret_hits(text: str) -> list[str]:
    return [f"{name}: {m.group(0)[:12]}..." for name, pat in SECRET_PATTERNS.items() for m in re.finditer(pat, text)]


@pytest.mark.parametrize("path", [CLUSTER_YAML, SERVE_YAML, RUN_CONFIG, CLUSTER_DOC], ids=lambda p: p.name)
def test_no_secret_literals(path: Path) -> None:
    assert _secret_hits(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("planted", [
    lambda: f"RAY_AUTH_TOKEN={secrets.token_hex(32)}",
    lambda: f"  token: {secrets.token_hex(20)}",
    lambda: "export HF_TOKEN=hf_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b"),
    lambda: "--api-key sk-" + secrets.token_urlsafe(24),
    lambda: "aws_access_key_id = AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
    lambda: "-----BEGIN OPENSSH PRIVATE KEY-----",
    lambda: "Authorization: Bearer " + secrets.token_urlsafe(32) + "Aa1",
])
def test_the_secret_scan_catches_planted_secrets(planted) -> None:
    text = CLUSTER_YAML.read_text(encoding="utf-8") + "\n# " + planted() + "\n"
    assert _secret_hits(text), "the scanner missed a planted secret"


# -- docs/CLUSTER.md commands against the real command lines -----------------------------------------------------


def _joined_doc() -> str:
    return CLUSTER_DOC.read_text(encoding="utf-8")


def _doc_commands() -> list[list[str]]:
    """Shell commands of the ```bash blocks, continuation lines joined, comments and env assignments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", _joined_doc(), re.S)
    out = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words.pop(0)
            ends = [i for i, w in enumerate(words) if w in ("|", "&", "&&", ";") or w.startswith((">", "2>"))]
            words = words[: ends[0]] if ends else words
            if words:
                out.append(words)
    return out


def _parse_ray(argv: list[str]):
    """Parse `ray ...` with Ray's own click CLI, down to the leaf command, without running it."""
    import click
    from ray.scripts.scripts import cli

    ctx = cli.make_context("ray", list(argv))
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        name, sub, rest = cmd.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return ctx


def _parse_pipeline(argv: list[str]):
    from pipeline.cli import build_parser

    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"`python -m pipeline {' '.join(argv)}` does not parse") from None


def test_doc_commands_parse_with_the_real_command_lines(cluster: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    seen: dict[str, list] = {}
    mount = next(r for r, local in cluster["file_mounts"].items() if local in (".", "./"))
    for words in _doc_commands():
        if words[0] == "ray":
            ctx = _parse_ray(words[1:])
            seen.setdefault(ctx.command_path, []).append(ctx.params)
            if ctx.command_path == "ray exec":
                inner = shlex.split(ctx.params["cmd"])
                if inner[0] == "ray":
                    _parse_ray(inner[1:])
                for word in inner:  # files named on the node exist in the tree that file_mounts copies
                    if word.startswith(mount + "/"):
                        assert (REPO / word.removeprefix(mount + "/")).is_file(), word
            if ctx.command_path == "ray job submit":
                entry = list(ctx.params["entrypoint"])
                assert entry[:3] == ["python", "-m", "pipeline"], entry
                seen.setdefault("entrypoint", []).append(_parse_pipeline(entry[3:]))
        elif words[:3] == ["python", "-m", "pipeline"]:
            seen.setdefault(f"pipeline {words[3]}", []).append(_parse_pipeline(words[3:]))
    for needed in ("ray up", "ray get-auth-token", "ray dashboard", "ray exec", "ray job submit", "ray job logs",
                   "ray job stop", "ray down", "pipeline push"):
        assert needed in seen, f"docs/CLUSTER.md has no `{needed}` command"
    assert any(p["cluster_config_file"] == CLUSTER_YAML.name for p in seen["ray up"])
    assert any(p["generate"] for p in seen["ray get-auth-token"])
    assert any(p["follow"] for p in seen["ray job logs"])
    runs = [a for a in seen["entrypoint"] if a.command == "run"]
    assert any(a.config == str(RUN_CONFIG.relative_to(REPO)) for a in runs)
    assert any(a.resume and urlparse(a.resume).scheme == "s3" for a in runs), "resume from the s3:// version"
    for submit in seen["ray job submit"]:
        assert submit["working_dir"] == "."


def test_job_submit_ships_the_code_without_outputs_or_venv(tmp_path: Path) -> None:
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    envs = set()
    for words in _doc_commands():
        if words[:3] == ["ray", "job", "submit"]:
            envs.add(_parse_ray(words[1:]).params["runtime_env_json"])
    assert len(envs) == 1, "every submit in the docs should ship the same runtime env"
    excludes = json.loads(envs.pop())["excludes"]
    tree = ["outputs/safe-completion-v1/v0001/sft/train-00000-of-00001.parquet", ".venv/bin/python",
            ".git/HEAD", "pipeline/__pycache__/cli.cpython-311.pyc", "pipeline/cli.py", "pipeline/runner/driver.py",
            "seeds/biology.jsonl", "policy_specs/safe_completion_v1.yaml", "configs/cluster.example.yaml",
            "pyproject.toml"]
    for rel in tree:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    shipped: list[str] = []
    # include_gitignore=False: the excludes alone must do it, even with RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1.
    _dir_travel(tmp_path, [_get_excludes(tmp_path, excludes)],
                lambda p: p.is_file() and shipped.append(p.relative_to(tmp_path).as_posix()), include_gitignore=False)
    assert sorted(shipped) == sorted(r for r in tree if not r.startswith(("outputs/", ".venv/", ".git/"))
                                     and "__pycache__" not in r)
