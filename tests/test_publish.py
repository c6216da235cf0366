"""Publishing: the staged Hub folder loads with `datasets` per config, the card says what it must, and the real
push path runs through huggingface_hub against a fake Hub on 127.0.0.1 (HF_ENDPOINT), with no network.

The fake Hub implements the endpoints huggingface_hub 2.4 calls for create_repo, list_repo_refs, list_repo_files,
create_branch, create_commit (validate-yaml, preupload, LFS batch + basic PUT upload, ndjson commit),
create_tag and delete_tag. It stores what it receives so tests can assert on commits, files and tags.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.errors import PipelineError, RunFailed
from pipeline.publish import build_hub_folder
from pipeline.publish.card import size_category
from pipeline.publish.hub import commit_message, push_folder
from pipeline.publish.layout import staged_files
from pipeline.versions import HUB_TABLES, open_version
from synthetic_version import write_synthetic_version

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_test_SECRET_token_0123456789"
REPO = "test-org/safe-sft"


# --------------------------------------------------------------------------------------------------------------
# Fixtures: the version under test (repoint `version_dir` at the runner's real version when it lands)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_version(tmp_path_factory.mktemp("outputs"), n_prompts=40)


@pytest.fixture(scope="module")
def staged(version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("staged") / "hub"
    build_hub_folder(open_version(version_dir), folder, repo_id=REPO)
    return folder


# --------------------------------------------------------------------------------------------------------------
# A fake Hugging Face Hub on loopback
# --------------------------------------------------------------------------------------------------------------


class FakeHub:
    """In-memory Hub state: repos with branches (commit chains of {path: bytes}), tags, and a request log."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization header
        self.commits: list[dict] = []  # every commit made through the API, in order
        self.lock = threading.Lock()
        self.endpoint = ""

    def new_repo(self, repo_id: str, private: bool) -> None:
        oid = hashlib.sha1(f"init {repo_id}".encode()).hexdigest()
        files = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        self.repos[repo_id] = {"private": private, "commits": {oid: files}, "branches": {"main": oid}, "tags": {}}

    def resolve(self, repo: dict, rev: str) -> str | None:
        if rev in repo["branches"]:
            return repo["branches"][rev]
        if rev in repo["tags"]:
            return repo["tags"][rev]
        return rev if rev in repo["commits"] else None

    def files_at(self, repo_id: str, rev: str) -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo["commits"][self.resolve(repo, rev)]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: object = None, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            body = self._body()
            with hub.lock:
                hub.requests.append((method, path, self.headers.get("Authorization")))
                if path.startswith("/api/") and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._error(401, "Unauthorized", "Invalid credentials")
                self._dispatch(method, path, parse_qs(url.query), body)

        def _dispatch(self, method: str, path: str, query: dict, body: bytes) -> None:
            if method == "POST" and path == "/api/repos/create":
                req = json.loads(body)
                repo_id = f"{req['organization']}/{req['name']}"
                if repo_id in hub.repos:  # the Hub answers 409 with the existing repo's url
                    message = "You already created this dataset repo"
                    return self._send(409, {"error": message, "url": f"{hub.endpoint}/datasets/{repo_id}"},
                                      {"X-Error-Message": message})
                hub.new_repo(repo_id, req.get("visibility") == "private")
                return self._send(200, {"url": f"{hub.endpoint}/datasets/{repo_id}", "name": repo_id})
            if method == "POST" and path == "/api/validate-yaml":
                content = json.loads(body)["content"]
                try:
                    meta = yaml.safe_load(content.split("---", 2)[1])
                    assert isinstance(meta, dict) and "configs" in meta
                except Exception as exc:  # noqa: BLE001 - report any YAML problem as the Hub does
                    return self._send(400, {"errors": [{"message": f"invalid metadata: {exc}"}]})
                return self._send(200, {"errors": [], "warnings": []})
            if method == "PUT" and path.startswith("/lfs-upload/"):
                oid = path.rsplit("/", 1)[1]
                if hashlib.sha256(body).hexdigest() != oid:
                    return self._send(400, {"error": "sha256 mismatch"})
                hub.lfs[oid] = body
                return self._send(200, {})
            if method == "POST" and path.endswith(".git/info/lfs/objects/batch"):
                req = json.loads(body)
                objects = [
                    {"oid": o["oid"], "size": o["size"],
                     "actions": {"upload": {"href": f"{hub.endpoint}/lfs-upload/{o['oid']}"}}}
                    for o in req["objects"]
                ]
                return self._send(200, {"transfer": "basic", "objects": objects})
            parts = path.split("/")
            if len(parts) < 6 or parts[1:3] != ["api", "datasets"]:
                return self._error(404, "EntryNotFound", f"no route {method} {path}")
            repo_id, action, rest = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if method == "GET" and action == "refs":
                def ref(kind: str, name: str, oid: str) -> dict:
                    return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}
                return self._send(200, {
                    "branches": [ref("heads", n, o) for n, o in repo["branches"].items()],
                    "tags": [ref("tags", n, o) for n, o in repo["tags"].items()],
                    "converts": [],
                })
            if method == "GET" and action == "tree":
                rev = rest.split("/", 1)[0]
                oid = hub.resolve(repo, rev)
                if oid is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                files = repo["commits"][oid]
                return self._send(200, [
                    {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for p, b in sorted(files.items())
                ])
            if method == "POST" and action == "branch":
                if rest in repo["branches"]:
                    return self._error(409, "BranchExists", "branch exists")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                repo["branches"][rest] = hub.resolve(repo, start)
                return self._send(200, {})
            if method == "POST" and action == "preupload":
                req = json.loads(body)
                return self._send(200, {"files": [
                    {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith((".parquet", ".png")) else "regular",
                     "shouldIgnore": False}
                    for f in req["files"]
                ]})
            if method == "POST" and action == "commit":
                return self._commit(repo_id, repo, rest, body)
            if method == "POST" and action == "tag":
                req = json.loads(body)
                if req["tag"] in repo["tags"]:
                    return self._error(409, "TagExists", "tag already exists")
                oid = hub.resolve(repo, rest)
                if oid is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {rest}")
                repo["tags"][req["tag"]] = oid
                return self._send(200, {})
            if method == "DELETE" and action == "tag":
                if repo["tags"].pop(rest, None) is None:
                    return self._error(404, "RevisionNotFound", "no such tag")
                return self._send(200, {})
            return self._error(404, "EntryNotFound", f"no route {method} {path}")

        def _commit(self, repo_id: str, repo: dict, branch: str, body: bytes) -> None:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            if branch not in repo["branches"]:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
            files = dict(repo["commits"][repo["branches"][branch]])
            header, added, deleted = None, [], []
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                    added.append(value["path"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return self._send(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                    files[value["path"]] = hub.lfs[value["oid"]]
                    added.append(value["path"])
                elif key == "deletedFile":
                    files.pop(value["path"])
                    deleted.append(value["path"])
                else:
                    return self._send(400, {"error": f"unsupported operation {key}"})
            oid = hashlib.sha1(json.dumps([header, sorted(added), len(hub.commits)]).encode()).hexdigest()
            repo["commits"][oid] = files
            repo["branches"][branch] = oid
            hub.commits.append({"repo": repo_id, "branch": branch, "oid": oid, "header": header,
                                "added": added, "deleted": deleted})
            return self._send(200, {"commitUrl": f"{hub.endpoint}/datasets/{repo_id}/commit/{oid}",
                                    "commitOid": oid, "pullRequestUrl": None})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A running fake Hub; HF_ENDPOINT and HF_TOKEN point at it, and huggingface_hub uses plain LFS, not Xet."""
    import huggingface_hub.constants as hf_constants

    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    # The Xet protocol needs a CAS server; the Hub decides per repo, the fake one speaks only LFS.
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    yield hub
    server.shutdown()
    server.server_close()


def _push(staged: Path, version_dir: Path, hub: FakeHub, **kw):
    v = open_version(version_dir)
    return push_folder(staged, repo_id=REPO, dataset=v.dataset, version=v.version, run_id=v.run_id,
                       endpoint=hub.endpoint, **kw)


def _cli(*args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------------------------------------------
# The staged folder
# --------------------------------------------------------------------------------------------------------------


def card_configs(folder: Path) -> list[str]:
    meta = yaml.safe_load((folder / "README.md").read_text().split("---", 2)[1])
    return [c["config_name"] for c in meta["configs"]]


def test_staged_layout_has_every_listed_shard_renamed_for_the_hub(staged: Path, version_dir: Path) -> None:
    v = open_version(version_dir)
    files = staged_files(staged)
    assert "README.md" in files
    assert not any(f.startswith(("prompts/", "data/prompts", "_ledger", "_journal")) or f == "run.log" for f in files)
    for table in HUB_TABLES:
        sources = v.table_paths(table)
        n = len(sources)
        staged_shards = [f for f in files if f.startswith(f"data/{table}/")]
        if sum(pq.ParquetFile(p).metadata.num_rows for p in sources) == 0:
            assert staged_shards == [] and table not in card_configs(staged)
            continue
        expected = [f"data/{table}/train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
        assert staged_shards == expected and table in card_configs(staged)
        for src, rel in zip(sources, expected):
            if pq.ParquetFile(src).metadata.num_rows:  # same bytes, nothing re-encoded or dropped
                assert (staged / rel).read_bytes() == src.read_bytes()
            else:  # an empty shard keeps its schema and metadata but no (empty) row group
                assert pq.ParquetFile(staged / rel).metadata.num_row_groups == 0
                assert pq.read_schema(staged / rel) == pq.read_schema(src)


@pytest.mark.parametrize("config", HUB_TABLES)
def test_every_config_loads_from_the_staged_folder(
    staged: Path, version_dir: Path, config: str, tmp_path: Path
) -> None:
    import datasets

    from pipeline.records import TABLE_SCHEMAS

    v = open_version(version_dir)
    expected_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in v.table_paths(config))
    if expected_rows == 0:  # an empty table cannot be a config (datasets cannot load an empty split)
        assert config not in card_configs(staged)
        return
    ds = datasets.load_dataset(str(staged), config, split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == expected_rows
    assert ds.column_names == TABLE_SCHEMAS[config].names
    if config == "sft":
        row = ds[0]
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["severity"] == 0
    if config == "preferences":
        row = ds[0]
        assert row["chosen"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"


def test_empty_shards_and_an_empty_table_still_publish_loadable_configs(tmp_path: Path) -> None:
    """Tail shards with no prompts are empty (pyarrow writes one empty row group, which datasets cannot read);
    a table with no rows at all cannot be a config. Both happen in real runs."""
    import datasets

    vdir = write_synthetic_version(tmp_path / "out", n_prompts=6, n_shards=8)
    manifest = json.loads((vdir / "manifest.json").read_text())
    for rel in manifest["shards"]["tables"]["preferences"]:
        pq.write_table(pq.read_table(vdir / rel).slice(0, 0), vdir / rel, compression="zstd")
    manifest["counts"]["preferences"] = 0
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    assert pq.ParquetFile(vdir / manifest["shards"]["tables"]["sft"][7]).metadata.num_row_groups == 1  # empty one
    folder = tmp_path / "hub"
    build_hub_folder(open_version(vdir), folder, repo_id=REPO)
    assert card_configs(folder) == ["sft", "candidates", "rejected"]
    assert "`preferences` (0 rows) | empty in this version" in (folder / "README.md").read_text()
    assert not (folder / "data" / "preferences").exists()
    for config in card_configs(folder):
        ds = datasets.load_dataset(str(folder), config, split="train", cache_dir=str(tmp_path / "cache"))
        files = sorted((folder / "data" / config).iterdir())
        assert len(files) == 8 and ds.num_rows == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        sources = manifest["shards"]["tables"][config]
        assert ds.num_rows == sum(pq.ParquetFile(vdir / r).metadata.num_rows for r in sources)


def test_card_front_matter_and_body(staged: Path, version_dir: Path) -> None:
    v = open_version(version_dir)
    card = (staged / "README.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---", 2)[1])
    published = [t for t in HUB_TABLES if sum(pq.ParquetFile(p).metadata.num_rows for p in v.table_paths(t))]
    assert [c["config_name"] for c in meta["configs"]] == published
    assert meta["configs"][0].get("default") is True
    for c in meta["configs"]:
        assert c["data_files"] == [{"split": "train", "path": f"data/{c['config_name']}/train-*.parquet"}]
    for key in ("license", "task_categories", "tags", "size_categories", "pretty_name"):
        assert meta[key], key
    assert meta["size_categories"] == [size_category(v.counts["kept"])]
    body = card.split("---", 2)[2]
    assert "NOT FOR TRAINING" in body  # made with the bundled scripted teacher (synthetic and embedded defaults)
    teachers = [t["name"] for t in v.manifest["teachers"]] + [t["model"] for t in v.manifest["teachers"]]
    for needle in (v.policy["name"], v.policy["version"], v.policy["sha256"], v.run_id, *teachers,
                   "What this is", "Not for", "Lineage", "## Counts", "sev_4", "refusal_with_alternatives",
                   f"revision=\"{v.version}\""):
        assert needle in body, needle
    for intent in ("benign", "dual_use", "malicious"):
        assert f"| kept | {intent} |" in body
    images = [line[line.index("](") + 2:-1] for line in body.splitlines() if line.startswith("![")]
    assert images and all((staged / p).is_file() and (staged / p).read_bytes()[:4] == b"\x89PNG" for p in images)


def test_card_has_no_dry_run_warning_for_real_teachers_and_shows_lineage(tmp_path: Path) -> None:
    parent = {"version": "v0001", "path": "outputs/demo/v0001", "changes": {"added": 2, "removed": 5, "replaced": 1}}
    vdir = write_synthetic_version(tmp_path / "out", version="v0002", parent=parent, n_prompts=20)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["teachers"] = [{"name": "vllm-a", "model": "org/model-a", "styles": ["helpful"], "sampling": {}}]
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    build_hub_folder(open_version(vdir), tmp_path / "hub", repo_id=REPO, license="cc-by-4.0")
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "NOT FOR TRAINING" not in card
    assert "license: cc-by-4.0" in card
    lineage = card.split("## Lineage", 1)[1]
    assert "v0001" in lineage and "| removed | 5 |" in lineage


def test_refuses_incomplete_version(tmp_path: Path) -> None:
    vdir = write_synthetic_version(tmp_path / "out", status="interrupted", n_prompts=12)
    with pytest.raises(PipelineError, match="status 'interrupted', not 'complete'"):
        build_hub_folder(open_version(vdir), tmp_path / "hub", repo_id=REPO)
    assert not (tmp_path / "hub").exists()


def test_refuses_inconsistent_version(tmp_path: Path) -> None:
    vdir = write_synthetic_version(tmp_path / "out", n_prompts=12)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["counts"]["kept"] += 1
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    stray = (vdir / manifest["shards"]["tables"]["sft"][0]).read_bytes()
    (vdir / "sft" / "train-00009-of-00010.parquet").write_bytes(stray)
    with pytest.raises(RunFailed) as err:
        build_hub_folder(open_version(vdir), tmp_path / "hub", repo_id=REPO)
    text = err.value.render()
    assert "not listed in the manifest" in text and "manifest counts say" in text


def test_renumbers_a_table_with_a_different_shard_count(tmp_path: Path) -> None:
    vdir = write_synthetic_version(tmp_path / "out", n_prompts=12, n_shards=3)
    manifest = json.loads((vdir / "manifest.json").read_text())
    # The runner wrote rejected as one file named for 3 shards: publish must call it 00000-of-00001, and keep it.
    import pyarrow as pa

    paths = manifest["shards"]["tables"]["rejected"]
    merged = pa.concat_tables([pq.read_table(vdir / p) for p in paths])
    for p in paths:
        (vdir / p).unlink()
    pq.write_table(merged, vdir / paths[0], compression="zstd")
    manifest["shards"]["tables"]["rejected"] = paths[:1]
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    build_hub_folder(open_version(vdir), tmp_path / "hub", repo_id=REPO)
    files = staged_files(tmp_path / "hub")
    assert [f for f in files if f.startswith("data/rejected/")] == ["data/rejected/train-00000-of-00001.parquet"]
    assert len([f for f in files if f.startswith("data/sft/")]) == 3
    assert pq.read_table(tmp_path / "hub" / "data/rejected/train-00000-of-00001.parquet").num_rows == merged.num_rows


def test_staging_dir_must_be_empty(version_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "stale.parquet").write_bytes(b"x")
    with pytest.raises(PipelineError, match="not empty"):
        build_hub_folder(open_version(version_dir), tmp_path / "hub", repo_id=REPO)


# --------------------------------------------------------------------------------------------------------------
# The push, through huggingface_hub, against the fake Hub
# --------------------------------------------------------------------------------------------------------------


def test_push_makes_one_commit_with_every_file_and_tags_it(staged: Path, version_dir: Path, fake_hub: FakeHub) -> None:
    v = open_version(version_dir)
    result = _push(staged, version_dir, fake_hub)
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["header"]["summary"] == commit_message(v.dataset, v.version, v.run_id)
    assert v.version in commit["header"]["summary"] and v.run_id in commit["header"]["summary"]
    assert sorted(commit["added"]) == staged_files(staged) and commit["deleted"] == []
    repo = fake_hub.repos[REPO]
    assert repo["tags"] == {v.version: result.commit_oid} and repo["branches"]["main"] == result.commit_oid
    files = fake_hub.files_at(REPO, v.version)
    for rel in staged_files(staged):
        assert files[rel] == (staged / rel).read_bytes(), rel
    lfs_puts = [p for m, p, _ in fake_hub.requests if m == "PUT"]
    assert len(lfs_puts) == len([f for f in staged_files(staged) if f.endswith((".parquet", ".png"))])
    api_calls = [(m, p) for m, p, _ in fake_hub.requests if p.startswith("/api/")]
    assert all(auth == f"Bearer {TOKEN}" for _, p, auth in fake_hub.requests if p.startswith("/api/"))
    assert ("POST", "/api/repos/create") in api_calls
    assert ("POST", f"/api/datasets/{REPO}/tag/{result.commit_oid}") in api_calls


def test_push_refuses_existing_tag_unless_forced(staged: Path, version_dir: Path, fake_hub: FakeHub) -> None:
    v = open_version(version_dir)
    first = _push(staged, version_dir, fake_hub)
    with pytest.raises(PipelineError, match=f"tag '{v.version}' already exists"):
        _push(staged, version_dir, fake_hub)
    assert len(fake_hub.commits) == 1  # refused before uploading anything
    assert fake_hub.repos[REPO]["tags"][v.version] == first.commit_oid
    moved = _push(staged, version_dir, fake_hub, force=True)
    assert moved.moved_tag and len(fake_hub.commits) == 2
    assert fake_hub.repos[REPO]["tags"][v.version] == moved.commit_oid


def test_push_of_next_version_deletes_stale_shards_and_keeps_old_tag(
    staged: Path, version_dir: Path, fake_hub: FakeHub, tmp_path: Path
) -> None:
    v1 = open_version(version_dir)
    first = _push(staged, version_dir, fake_hub)
    next_version = f"v{int(v1.version[1:]) + 1:04d}"
    v2dir = write_synthetic_version(tmp_path / "out", version=next_version, n_prompts=12, n_shards=1,
                                    parent={"version": v1.version, "path": str(version_dir), "changes": {}})
    folder = tmp_path / "hub2"
    build_hub_folder(open_version(v2dir), folder, repo_id=REPO)
    second = _push(folder, v2dir, fake_hub, branch="release")
    assert second.revision == "release"
    assert fake_hub.repos[REPO]["branches"]["release"] == second.commit_oid
    assert fake_hub.repos[REPO]["branches"]["main"] == first.commit_oid
    new_files = fake_hub.files_at(REPO, next_version)
    assert sorted(p for p in new_files if p.startswith("data/sft/")) == ["data/sft/train-00000-of-00001.parquet"]
    old_files = fake_hub.files_at(REPO, v1.version)
    managed = {p for p in old_files if p.startswith(("data/", "images/"))}
    assert second.deleted and set(second.deleted) == managed - set(staged_files(folder))
    assert ".gitattributes" in new_files  # files the tool does not own are left alone
    assert all(old_files[p] == (staged / p).read_bytes() for p in staged_files(staged))  # old tag still complete


def test_push_without_token_fails_clearly(staged: Path, version_dir: Path, fake_hub: FakeHub,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PipelineError, match="no Hugging Face token"):
        _push(staged, version_dir, fake_hub)
    assert fake_hub.requests == []


def test_cli_push_through_fake_hub_never_shows_the_token(version_dir: Path, fake_hub: FakeHub, tmp_path: Path) -> None:
    v = open_version(version_dir)
    env = {"HF_ENDPOINT": fake_hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
           "HF_HOME": str(tmp_path / "hf_home")}
    staging = tmp_path / "stage"
    proc = _cli("push", str(version_dir), "--repo-id", REPO, "--staging-dir", str(staging), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"tag {v.version}" in proc.stdout
    assert len(fake_hub.commits) == 1 and fake_hub.repos[REPO]["tags"].keys() == {v.version}
    again = _cli("push", str(version_dir), "--repo-id", REPO, "--staging-dir", str(tmp_path / "stage2"), env=env)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr
    for text in (proc.stdout, proc.stderr, again.stdout, again.stderr):
        assert TOKEN not in text
    written = [p for p in [*staging.rglob("*"), *(tmp_path / "hf_home").rglob("*")] if p.is_file()]
    assert all(TOKEN.encode() not in p.read_bytes() for p in written)


def test_cli_dry_run_touches_no_network(version_dir: Path, fake_hub: FakeHub, tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": fake_hub.endpoint, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf_home")}
    proc = _cli("push", str(version_dir), "--repo-id", REPO, "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.requests == []
    n = len(open_version(version_dir).table_paths("sft"))
    assert f"data/sft/train-{n - 1:05d}-of-{n:05d}.parquet" in proc.stdout
    assert "config_name: sft" in proc.stdout and "## Lineage" in proc.stdout
    folder = Path(proc.stdout.rsplit("the folder is ", 1)[1].split()[0])
    try:
        assert "README.md" in staged_files(folder)
    finally:
        import shutil

        shutil.rmtree(folder)


def test_cli_refuses_incomplete_version_with_clear_message(tmp_path: Path) -> None:
    vdir = write_synthetic_version(tmp_path / "out", status="running", n_prompts=12)
    proc = _cli("push", str(vdir), "--repo-id", REPO, "--dry-run")
    assert proc.returncode == 2
    assert "status 'running', not 'complete'" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_push_without_token_stops_before_staging(version_dir: Path, fake_hub: FakeHub, tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": fake_hub.endpoint, "HF_HOME": str(tmp_path / "hf_home")}
    staging = tmp_path / "stage"
    proc = _cli("push", str(version_dir), "--repo-id", REPO, "--staging-dir", str(staging), env=env, drop=("HF_TOKEN",))
    assert proc.returncode == 2
    assert "no Hugging Face token" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert fake_hub.requests == [] and not staging.exists()
