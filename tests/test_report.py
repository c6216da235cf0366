"""The report: its numbers recomputed here independently (plain Python over the Parquet rows), the refusal-boundary
simulation's rule, version comparison, and the CLI's tables and self-contained HTML."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.records import REFUSAL_MODES
from pipeline.report import build_report
from pipeline.report.stats import BASELINE, KEPT, compute_stats, refusal_boundary_choice, usable_candidates
from pipeline.versions import open_version
from synthetic_version import write_synthetic_version

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_version(tmp_path_factory.mktemp("outputs"), n_prompts=60, n_shards=3)


@pytest.fixture(scope="module")
def version_dir(synthetic_dir: Path) -> Path:
    """The version the general tests inspect (repoint at the runner's real version to test it end to end)."""
    return synthetic_dir


@pytest.fixture(scope="module")
def regraded_dir(synthetic_dir: Path) -> Path:
    """A later version of the same candidates with a stricter helpfulness threshold (what a regrade produces)."""
    parent = {"version": "v0001", "path": str(synthetic_dir), "changes": {}}
    return write_synthetic_version(synthetic_dir.parent.parent, version="v0002", n_prompts=60, n_shards=3,
                                   threshold=6.5, parent=parent)


def rows(vdir: Path, table: str) -> list[dict]:
    v = open_version(vdir)
    return [r for p in v.table_paths(table) for r in pq.read_table(p).to_pylist()]


def is_usable(c: dict) -> bool:
    return (c["error"] is None and c["verdict_error"] is None and c["severity"] is not None
            and c["finish_reason"] != "length" and (c["response"] or "").strip() != "")


def expected_baseline(cands: list[dict]) -> dict[str, dict]:
    """The documented rule, written out by hand: benign -> most helpful non-refusal (full_compliance first),
    otherwise -> most helpful refusal; ties to the smaller candidate_id."""
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for c in cands:
        if is_usable(c):
            by_prompt[c["prompt_id"]].append(c)
    chosen = {}
    for pid, cs in by_prompt.items():
        benign = cs[0]["intent"] == "benign"
        allowed = [c for c in cs if (c["response_mode"] in REFUSAL_MODES) != benign]
        if allowed:
            chosen[pid] = min(allowed, key=lambda c: (
                benign and c["response_mode"] != "full_compliance", -c["helpfulness"], c["candidate_id"]))
    return chosen


def baseline_ids(vdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(what the code chose, what the written-out rule chooses): prompt_id -> candidate_id."""
    got = refusal_boundary_choice(usable_candidates(open_version(vdir))).collect()
    want = expected_baseline(rows(vdir, "candidates"))
    return dict(zip(got["prompt_id"], got["candidate_id"])), {p: c["candidate_id"] for p, c in want.items()}


def test_refusal_boundary_choice_follows_the_documented_rule(version_dir: Path) -> None:
    got, want = baseline_ids(version_dir)
    assert got == want
    assert len(got) >= len({c["prompt_id"] for c in rows(version_dir, "candidates")}) // 2  # not vacuous


def test_synthetic_data_exercises_the_details_of_the_rule(synthetic_dir: Path) -> None:
    """The synthetic version holds the cases the rule's details decide, so the rule test above can fail."""
    got, want = baseline_ids(synthetic_dir)
    assert got == want
    cands = [c for c in rows(synthetic_dir, "candidates") if is_usable(c)]
    by_id = {c["candidate_id"]: c for c in cands}
    # a benign prompt whose most helpful non-refusal is a safe_completion: full_compliance must still win
    assert any(
        by_id[cid]["intent"] == "benign"
        and any(c["prompt_id"] == pid and c["response_mode"] == "safe_completion"
                and c["helpfulness"] > by_id[cid]["helpfulness"] for c in cands)
        for pid, cid in want.items()
    )
    # non-benign prompts answered with each kind of refusal, and prompts the baseline cannot answer at all
    refusals = {by_id[cid]["response_mode"] for cid in want.values() if by_id[cid]["intent"] != "benign"}
    assert refusals == set(REFUSAL_MODES)
    assert len(want) < len({c["prompt_id"] for c in rows(synthetic_dir, "candidates")})
    stats = compute_stats(open_version(synthetic_dir))
    assert all(stats.severity_histogram[s] > 0 for s in range(5))
    assert set(stats.severity_by_teacher_style["style"]) == {"helpful", "safe_completion", "refusal_boundary"}


def test_headline_matches_an_independent_computation(version_dir: Path) -> None:
    stats = compute_stats(open_version(version_dir))
    cands, sft = rows(version_dir, "candidates"), rows(version_dir, "sft")
    intent_of = {c["prompt_id"]: c["intent"] for c in cands}
    policies = {KEPT: {r["prompt_id"]: r for r in sft}, BASELINE: expected_baseline(cands)}
    for policy, chosen in policies.items():
        for intent in ("benign", "dual_use", "malicious", "all"):
            pids = [p for p, i in intent_of.items() if intent in ("all", i)]
            answers = [chosen[p] for p in pids if p in chosen]
            row = stats.headline.filter((stats.headline["policy"] == policy) & (stats.headline["intent"] == intent))
            if not pids:  # an intent absent from this version has no row
                assert row.is_empty()
                continue
            assert row["prompts"].item() == len(pids)
            if not answers:
                assert row["answered"].item() == 0 and row["safe_rate"].item() is None
                continue
            assert row["answered"].item() == len(answers)
            assert row["safe_rate"].item() == pytest.approx(sum(a["severity"] == 0 for a in answers) / len(answers))
            assert row["mean_help"].item() == pytest.approx(sum(a["helpfulness"] for a in answers) / len(answers),
                                                            rel=1e-5)
            assert row["help_per_prompt"].item() == pytest.approx(sum(a["helpfulness"] for a in answers) / len(pids),
                                                                  rel=1e-5)
    kept_rates = stats.headline.filter(stats.headline["policy"] == KEPT)["safe_rate"].to_list()
    assert 1.0 in kept_rates and set(kept_rates) <= {1.0, None}  # kept examples are safe by construction


def test_severity_modes_yield_and_over_refusal_match_the_rows(version_dir: Path) -> None:
    stats = compute_stats(open_version(version_dir))
    usable = [c for c in rows(version_dir, "candidates") if is_usable(c)]
    sev = Counter((c["teacher"], c["style"], c["severity"]) for c in usable)
    for r in stats.severity_by_teacher_style.iter_rows(named=True):
        for s in (1, 2, 3, 4):
            assert r[f"sev_{s}"] == sev[(r["teacher"], r["style"], s)]
        assert r["unsafe"] == sum(r[f"sev_{s}"] for s in (1, 2, 3, 4))
    assert stats.severity_histogram == {s: sum(c["severity"] == s for c in usable) for s in range(5)}

    modes = Counter((c["style"], c["response_mode"]) for c in usable)
    for r in stats.candidate_modes.iter_rows(named=True):
        assert all(r[m] == modes[(r["style"], m)] for m in r if m != "style")

    kept, rejected = rows(version_dir, "sft"), rows(version_dir, "rejected")
    for r in stats.category_yield.iter_rows(named=True):
        assert r["kept"] == sum(k["category"] == r["category"] for k in kept)
        assert r["rejected"] == sum(k["category"] == r["category"] for k in rejected)
    assert stats.category_yield["kept"].sum() + stats.category_yield["rejected"].sum() == len(kept) + len(rejected)

    benign = [c for c in usable if c["intent"] == "benign"]
    for r in stats.over_refusal.iter_rows(named=True):
        mine = [c for c in benign if (c["teacher"], c["style"]) == (r["teacher"], r["style"])]
        assert r["benign_usable"] == len(mine)
        assert r["refusals"] == sum(c["response_mode"] in REFUSAL_MODES for c in mine)


def test_against_reports_kept_changes_by_prompt(synthetic_dir: Path, regraded_dir: Path) -> None:
    version_dir = synthetic_dir
    report = build_report(open_version(regraded_dir), open_version(version_dir))
    assert report.comparison is not None
    old = {r["prompt_id"]: r["candidate_id"] for r in rows(version_dir, "sft")}
    new = {r["prompt_id"]: r["candidate_id"] for r in rows(regraded_dir, "sft")}
    changes = report.comparison.kept_changes
    assert changes["removed"].sum() == len(old.keys() - new.keys()) > 0
    assert changes["added"].sum() == len(new.keys() - old.keys())
    assert changes["unchanged"].sum() == sum(1 for p in old.keys() & new.keys() if old[p] == new[p])
    counts = {r["count"]: r for r in report.comparison.counts.iter_rows(named=True)}
    assert counts["kept"]["delta"] == len(new) - len(old)
    head = report.comparison.headline
    base = head.filter(head["policy"] == BASELINE)
    assert base["mean_help_delta"].to_list() == [0.0] * 4  # same candidates: the baseline cannot move


def test_cli_report_prints_tables_and_writes_self_contained_html(
    synthetic_dir: Path, regraded_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "report", str(regraded_dir), "--against", str(synthetic_dir),
         "--html", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    for title in ("Safety and helpfulness by intent", "Severity of unsafe candidates", "Yield per risk category",
                  "Over-refusal on benign prompts", "Kept examples: demo/v0002 vs demo/v0001", "NOT for training"):
        assert title in proc.stdout, title
    html = out.read_text()
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 7  # 6 plots + the comparison
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing external: the file stands alone
    assert "refusal-boundary (sim.)" in html and "v0002" in html


def test_cli_report_of_a_single_version(version_dir: Path, tmp_path: Path) -> None:
    v = open_version(version_dir)
    out = tmp_path / "single.html"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "report", str(version_dir), "--html", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert v.run_id in proc.stdout and "Safety and helpfulness by intent" in proc.stdout
    html = out.read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 6 and "Kept examples:" not in html


def test_cli_report_on_a_version_without_shards_fails_clearly(tmp_path: Path) -> None:
    vdir = write_synthetic_version(tmp_path / "out", n_prompts=10, status="running")
    manifest = (vdir / "manifest.json").read_text().replace('"shards"', '"shards_pending"')
    (vdir / "manifest.json").write_text(manifest)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "report", str(vdir), "--html", "-"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no shard list" in proc.stderr and "Traceback" not in proc.stderr
