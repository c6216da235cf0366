"""Push a staged folder to the Hugging Face Hub as one commit, then tag that commit with the version.

One commit (`create_commit`, not `upload_folder`, which may split large folders into several commits) so the
tag points at a state holding exactly this version: files of an earlier version under `data/` or `images/`
that this one does not have are deleted in the same commit, otherwise `data/sft/train-*.parquet` would still
match them. The token comes from `HF_TOKEN` or the standard huggingface_hub login; it is handed to
huggingface_hub and never printed, logged or written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.publish.layout import staged_files

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
MANAGED_PREFIXES = ("data/", "images/")  # folders this tool owns in the repo; anything else is left alone


@dataclass
class PushResult:
    repo_id: str
    revision: str  # the branch committed to
    commit_oid: str
    commit_url: str
    tag: str
    uploaded: list[str]
    deleted: list[str] = field(default_factory=list)
    moved_tag: bool = False


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID_RE.match(repo_id):
        raise PipelineError(f"invalid --repo-id '{repo_id}'", where="--repo-id",
                            hint="use ORG/NAME, e.g. my-org/safe-completion-sft")


def resolve_token() -> str:
    """The token huggingface_hub would use (HF_TOKEN, then the saved login); a clear error when there is none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PipelineError(
            "no Hugging Face token found",
            hint="set HF_TOKEN in the environment or run `hf auth login`; or use --dry-run to only stage the folder",
        )
    return token


def commit_message(dataset: str, version: str, run_id: str) -> str:
    return f"Publish {dataset} {version} (run {run_id})"


def push_folder(
    folder: Path,
    *,
    repo_id: str,
    dataset: str,
    version: str,
    run_id: str,
    private: bool = False,
    branch: str | None = None,
    force: bool = False,
    endpoint: str | None = None,
) -> PushResult:
    """Create the dataset repo if needed, commit `folder` in one commit on `branch`, tag it `version`.

    Refuses (before any upload) when the tag already exists, unless `force`, which moves the tag.
    `endpoint` defaults to HF_ENDPOINT / huggingface.co, as in huggingface_hub.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    token = resolve_token()
    api = HfApi(endpoint=endpoint, token=token)
    revision = branch or "main"
    files = staged_files(folder)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=True if private else None, exist_ok=True)
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        tag = next((t for t in refs.tags if t.name == version), None)
        if tag is not None and not force:
            raise PipelineError(
                f"tag '{version}' already exists on {repo_id} (commit {tag.target_commit[:12]})",
                where="--repo-id",
                hint="versions are immutable once published: push a new version, or pass --force to move the tag",
            )
        if branch and branch not in {b.name for b in refs.branches}:
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
        stale = sorted(p for p in remote if p.startswith(MANAGED_PREFIXES) and p not in set(files))
        operations: list = [CommitOperationDelete(path_in_repo=p) for p in stale]
        operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(Path(folder) / p)) for p in files]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message(dataset, version, run_id),
            commit_description=f"Dataset version {version} of {dataset}, run {run_id}, made by the safe-completion "
            "pipeline (python -m pipeline push).",
            repo_type="dataset",
            revision=revision,
        )
        if tag is not None:
            api.delete_tag(repo_id, tag=version, repo_type="dataset")
        api.create_tag(repo_id, tag=version, tag_message=commit_message(dataset, version, run_id),
                       revision=info.oid, repo_type="dataset")
    except HfHubHTTPError as exc:
        raise PipelineError(
            f"the Hub refused a request: {_first_line(str(exc)).replace(token, '***')}",
            where=repo_id,
            hint="check that the token can write to this namespace (HF_TOKEN or `hf auth login`)",
        ) from None
    return PushResult(repo_id, revision, info.oid, str(info.commit_url), version, files, stale, tag is not None)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
