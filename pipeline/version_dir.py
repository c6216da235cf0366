"""A dataset version directory: choosing its name, resuming it safely, and writing its manifest.

`outputs/<dataset>/<version>/` with version `v0001`, `v0002`, ... The manifest is written when the run starts
(status "running") and rewritten when it ends ("complete", "failed" or "interrupted"), so an unfinished version
always says what it is and with which config fingerprint it may be resumed.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.config import RunConfig
from pipeline.errors import RunFailed
from pipeline.storage import Storage

_VERSION_RE = re.compile(r"^v(\d{4,})$")
HEARTBEAT = "_work/heartbeat.json"
HEARTBEAT_EVERY_S = 10.0
HEARTBEAT_STALE_S = 60.0
PACKAGES = ("safe-completion-pipeline", "ray", "datasets", "openai", "pyarrow", "polars", "tenacity", "rich",
            "pydantic", "aiohttp", "huggingface_hub")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class VersionDir:
    storage: Storage
    dataset: str
    version: str
    run_id: str
    manifest: dict[str, Any]
    resumed: bool

    def write_manifest(self) -> None:
        self.storage.write_json("manifest.json", self.manifest)


def write_heartbeat(storage: Storage) -> None:
    """Say that a live driver is writing this version (refreshed every HEARTBEAT_EVERY_S while it runs)."""
    import os
    import socket
    import time

    storage.write_json(HEARTBEAT, {"pid": os.getpid(), "host": socket.gethostname(), "at": time.time()})


def live_writer(storage: Storage) -> dict[str, Any] | None:
    """The heartbeat of another driver still writing this version, or None.

    None when there is no heartbeat, when it went stale, when it is this process's own, or when it names a
    process on this host that no longer exists (a killed driver can be resumed at once, not after the timeout).
    """
    import os
    import socket
    import time

    if not storage.exists(HEARTBEAT):
        return None
    beat = storage.read_json(HEARTBEAT)
    if time.time() - beat.get("at", 0) >= HEARTBEAT_STALE_S:
        return None
    if beat.get("host") == socket.gethostname():
        if beat.get("pid") == os.getpid():
            return None
        try:
            os.kill(int(beat["pid"]), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # exists, owned by someone else
    return beat


def _versions(root: Storage) -> list[str]:
    return sorted((d for d in root.list_dirs() if _VERSION_RE.match(d)), key=lambda d: int(d[1:]))


def _new(root: Storage) -> str:
    """Claim the next free version name. Locally the directory creation itself is the claim (exclusive)."""
    import os

    existing = _versions(root)
    nxt = int(existing[-1][1:]) + 1 if existing else 1
    while True:
        name = f"v{nxt:04d}"
        if root.local:
            os.makedirs(root.root, exist_ok=True)
            try:
                os.mkdir(root.path(name))
                return name
            except FileExistsError:
                nxt += 1
                continue
        if not root.exists(name):
            return name
        nxt += 1


def describe_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Which fingerprinted parts differ between a stored manifest and the current run."""
    diffs = []
    if old.get("seeds", {}).get("sha256") != new["seeds"]["sha256"]:
        diffs.append("seeds changed (sha256 differs)")
    if old.get("policy", {}).get("sha256") != new["policy"]["sha256"]:
        diffs.append(f"policy changed ({old.get('policy', {}).get('version')} -> {new['policy']['version']}, sha256 differs)")
    for key, value in new["fingerprint_parts"].items():
        if old.get("fingerprint_parts", {}).get(key) != value:
            diffs.append(f"{key} changed")
    return diffs


def open_version(cfg: RunConfig, *, base: dict[str, Any], resume: str | None) -> VersionDir:
    """Create a new version, or reopen `resume` (a version directory), or auto-resume an unfinished one.

    `base` holds the manifest fields that identify the run's content (seeds, policy, fingerprint...). A resume
    whose fingerprint differs is refused with what changed: it would mix two datasets in one version.
    """
    if resume:
        storage = Storage(resume)
        if not storage.exists("manifest.json"):
            raise RunFailed("not a version directory (no manifest.json)", where=resume,
                            hint="pass the path printed by the interrupted run, e.g. outputs/<dataset>/v0003")
        beat = live_writer(storage)
        if beat is not None:
            raise RunFailed(f"another run is writing this version (pid {beat['pid']} on {beat['host']})", where=resume,
                            hint="stop that run first (Ctrl-C or SIGTERM); a killed run's heartbeat goes stale within "
                            f"{HEARTBEAT_STALE_S:.0f} s")
        return _reopen(storage, storage.read_json("manifest.json"), base)
    root = Storage(cfg.output).child(cfg.dataset)
    for name in reversed(_versions(root)):
        if not root.exists(f"{name}/manifest.json"):
            continue
        old = root.child(name).read_json("manifest.json")
        if (old.get("status") in ("running", "interrupted", "failed")
                and old.get("config_fingerprint") == base["config_fingerprint"]
                and live_writer(root.child(name)) is None):
            return _reopen(root.child(name), old, base)
    return create_version(root, cfg.dataset, base)


def create_version(root: Storage, dataset: str, base: dict[str, Any], parent: dict[str, Any] | None = None) -> VersionDir:
    """A brand-new version under `root` (the dataset folder), its manifest written with status "running"."""
    name = _new(root)
    run_id = f"run-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    manifest = {"dataset": dataset, "version": name, "run_id": run_id, "status": "running", "created_at": now(),
                "finished_at": None, "attempts": [{"run_id": run_id, "started_at": now()}], "parent": parent, **base}
    v = VersionDir(root.child(name), dataset, name, run_id, manifest, resumed=False)
    write_heartbeat(v.storage)
    v.write_manifest()
    return v


def _reopen(storage: Storage, old: dict[str, Any], base: dict[str, Any]) -> VersionDir:
    if old.get("status") == "complete":
        raise RunFailed("this version is already complete", where=storage.uri,
                        hint="run without --resume to make a new version")
    if old.get("config_fingerprint") != base["config_fingerprint"]:
        diffs = describe_differences(old, base) or ["config fingerprint differs"]
        raise RunFailed(
            "cannot resume: the run would not produce the same dataset:\n  - " + "\n  - ".join(diffs),
            where=storage.uri,
            hint="resume with the original config, seeds and policy, or start a new version (omit --resume)",
        )
    manifest = {**old, **base, "status": "running", "finished_at": None}
    run_id = old["run_id"]  # one version, one run id: rows written by every attempt agree
    manifest.setdefault("attempts", []).append({"run_id": run_id, "started_at": now(), "resumed": True})
    v = VersionDir(storage, old["dataset"], old["version"], run_id, manifest, resumed=True)
    write_heartbeat(storage)
    v.write_manifest()
    return v


def sum_entries(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Add up ledger entries: numbers are summed, dicts of numbers are summed key by key."""
    total: dict[str, Any] = {}
    for e in entries:
        for k, v in e.items():
            if isinstance(v, bool) or k in ("unit", "files"):
                continue
            if isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
            elif isinstance(v, dict):
                acc = total.setdefault(k, Counter())
                acc.update(v)
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in total.items()}
