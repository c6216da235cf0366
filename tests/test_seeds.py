"""Seed loading and validation: the bundled seed set, every bad-row kind in both modes, all source kinds, sha256."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError, SeedError
from pipeline.records import INTENTS, RISK_CATEGORIES, normalise_text
from pipeline.seeds import CONTROL_SOURCE, coverage_markdown, is_control, load_seeds

REPO = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO / "seeds"
CATEGORIES = RISK_CATEGORIES


def seed_row(i: int | str, **over: object) -> dict:
    row = {"id": f"t-{i}", "prompt": f"question number {i}?", "category": "chemistry", "intent": "dual_use"}
    row.update(over)
    return row


def write_jsonl(path: Path, rows: list[object]) -> Path:
    """Rows may be dicts (dumped) or raw strings (written verbatim, for broken lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# The bundled seed set
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    return load_seeds([str(SEEDS_DIR)], categories=CATEGORIES, on_invalid="skip")


def test_bundled_seeds_load_with_no_invalid_rows(bundled):
    assert bundled.invalid == []
    assert len(bundled.seeds) >= 150
    assert all(Path(s).suffix == ".jsonl" for s in bundled.sources)


def test_bundled_seeds_cover_every_category_and_intent(bundled):
    pairs = {(s.category, s.intent) for s in bundled.seeds}
    missing = [(c, i) for c in CATEGORIES for i in INTENTS if (c, i) not in pairs]
    assert missing == []
    per_cat = {c: sum(s.category == c for s in bundled.seeds) for c in CATEGORIES}
    assert min(per_cat.values()) >= 12, per_cat


def test_bundled_seeds_have_enough_benign_controls(bundled):
    controls = [s for s in bundled.seeds if s.source == CONTROL_SOURCE]
    assert len(controls) >= 20
    assert all(is_control(s) for s in controls), "a control must be benign"
    assert len({s.category for s in controls}) == len(CATEGORIES)


def test_bundled_seeds_are_distinct_and_well_formed(bundled):
    texts = [normalise_text(s.prompt) for s in bundled.seeds]
    assert len(set(texts)) == len(texts)
    for s in bundled.seeds:
        assert re.fullmatch(r"[a-z]+-\d{3}", s.id), s.id
        assert s.source in ("hand-written", CONTROL_SOURCE)
        assert s.notes and "\n" not in s.notes
        assert s.file.endswith(f"{s.category}.jsonl")


def test_readme_counts_table_matches_the_seeds(bundled):
    readme = (SEEDS_DIR / "README.md").read_text(encoding="utf-8")
    assert coverage_markdown(bundled.seeds) in readme


# ---------------------------------------------------------------------------------------------------------
# Bad rows: every kind, exact file:line and reason, in both modes
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def bad_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            seed_row(1),  # 1 valid
            "",  # 2 blank: not a row
            '{"id": "t-2", "prompt": "broken', # 3 invalid JSON
            '["t-3", "a list"]',  # 4 not an object
            {"id": "t-4", "prompt": "p", "category": "chemistry"},  # 5 missing intent
            seed_row(5, prompt=42),  # 6 wrong type
            seed_row(6, intent="harmful"),  # 7 unknown intent
            seed_row(7, category="astrology"),  # 8 unknown category
            seed_row(8, prompt="  \t "),  # 9 whitespace prompt
            seed_row(1, prompt="another text"),  # 10 duplicate id
            seed_row(9, notes=3),  # 11 optional field wrong type
            {"prompt": "p", "intent": "benign", "id": ""},  # 12 empty id + missing category
            seed_row(10, color="blue", weight=3),  # 13 valid: extra fields ignored
        ],
    )
    with open(path, "ab") as fh:
        fh.write(b'{"id": "t-11", "prompt": "caf\xe9", "category": "chemistry", "intent": "benign"}\n')  # 14 bad UTF-8
    return path


def expected_bad(path: Path) -> list[tuple[str, str]]:
    p = str(path)
    return [
        (f"{p}:3", "invalid JSON: Unterminated string"),
        (f"{p}:4", "not a JSON object (got array)"),
        (f"{p}:5", "missing required field(s): intent"),
        (f"{p}:6", "field 'prompt' must be a string, got integer"),
        (f"{p}:7", "unknown intent 'harmful' (expected one of: benign, dual_use, malicious)"),
        (f"{p}:8", "unknown category 'astrology'"),
        (f"{p}:9", "field 'prompt' is empty or whitespace"),
        (f"{p}:10", f"duplicate id 't-1' (first seen at {p}:1)"),
        (f"{p}:11", "field 'notes' must be a string or null, got integer"),
        (f"{p}:12", "missing required field(s): category; field 'id' is empty or whitespace"),
        (f"{p}:14", "not valid UTF-8"),
    ]


def assert_problems_match(got: list[tuple[str, str]], want: list[tuple[str, str]]) -> None:
    assert [w for w, _ in got] == [w for w, _ in want]
    for (where, reason), (_, expected) in zip(got, want):
        assert reason.startswith(expected), (where, reason, expected)


def test_fail_mode_collects_every_problem_then_raises(bad_jsonl):
    with pytest.raises(SeedError) as info:
        load_seeds([str(bad_jsonl)], categories=CATEGORIES)
    err = info.value
    assert_problems_match(err.problems, expected_bad(bad_jsonl))
    assert "--on-invalid-seed skip" in err.hint
    assert "11 invalid seed row(s)" in str(err)


def test_skip_mode_returns_every_invalid_row_with_recoverable_fields(bad_jsonl):
    load = load_seeds([str(bad_jsonl)], categories=CATEGORIES, on_invalid="skip")
    assert [s.id for s in load.seeds] == ["t-1", "t-10"]
    assert [(s.file, s.line) for s in load.seeds] == [(str(bad_jsonl), 1), (str(bad_jsonl), 13)]
    assert_problems_match([(b.where, b.reason) for b in load.invalid], expected_bad(bad_jsonl))
    by_line = {b.where.rsplit(":", 1)[1]: b for b in load.invalid}
    assert by_line["3"].seed_id == "t-2" and by_line["3"].raw is None  # salvaged from the broken line
    assert by_line["4"].seed_id is None and by_line["4"].raw is None
    assert by_line["7"].raw == seed_row(6, intent="harmful")
    assert (by_line["7"].seed_id, by_line["7"].category, by_line["7"].intent) == ("t-6", "chemistry", "harmful")
    assert by_line["6"].prompt is None and by_line["6"].seed_id == "t-5"
    assert by_line["10"].prompt == "another text"
    assert by_line["14"].seed_id == "t-11"


def test_unknown_category_is_only_checked_when_categories_are_given(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [seed_row(1, category="astrology")])
    assert [s.category for s in load_seeds([str(path)]).seeds] == ["astrology"]


def test_duplicate_ids_across_files_point_at_the_first(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [seed_row(1), seed_row(2)])
    b = write_jsonl(tmp_path / "b.jsonl", [seed_row(3), seed_row(2, prompt="other")])
    with pytest.raises(SeedError) as info:
        load_seeds([str(tmp_path)])
    assert info.value.problems == [(f"{b}:2", f"duplicate id 't-2' (first seen at {a}:2)")]
    load = load_seeds([str(a), str(b)], on_invalid="skip")
    assert [s.id for s in load.seeds] == ["t-1", "t-2", "t-3"]
    assert load.seeds[1].prompt == "question number 2?"


def test_problems_from_several_files_are_all_reported(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [seed_row(1, intent="x")])
    b = write_jsonl(tmp_path / "b.jsonl", [seed_row(2), seed_row(3, prompt="")])
    with pytest.raises(SeedError) as info:
        load_seeds([str(a), str(b)])
    assert [w for w, _ in info.value.problems] == [f"{a}:1", f"{b}:2"]


def test_skip_mode_with_nothing_valid_still_fails(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [seed_row(1, intent="x"), "nope"])
    with pytest.raises(SeedError) as info:
        load_seeds([str(path)], on_invalid="skip")
    assert len(info.value.problems) == 2
    assert "nothing to run" in info.value.hint


# ---------------------------------------------------------------------------------------------------------
# CSV, Parquet and hf: sources
# ---------------------------------------------------------------------------------------------------------


def test_csv_rows_are_numbered_from_the_header_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "id,prompt,category,intent,notes,extra\n"  # 1
        "c-1,plain question?,biology,benign,,x\n"  # 2 valid; empty notes -> None
        "c-2,,biology,benign,,\n"  # 3 empty prompt cell -> missing
        "\n"  # 4 blank
        'c-3,"a prompt, with a comma\nand a second line",biology,dual_use,n,\n'  # 5-6 valid, multi-line
        "c-4,short row,biology\n"  # 7 missing intent
        "c-5,too many,biology,benign,,,surplus\n"  # 8 more fields than header
        "c-6,  ,biology,benign,,\n"  # 9 whitespace prompt
        "c-1,dup,biology,benign,,\n",  # 10 duplicate
        encoding="utf-8",
    )
    load = load_seeds([str(path)], categories=CATEGORIES, on_invalid="skip")
    assert [(s.id, s.line, s.notes) for s in load.seeds] == [("c-1", 2, None), ("c-3", 5, "n")]
    assert load.seeds[1].prompt == "a prompt, with a comma\nand a second line"
    p = str(path)
    assert_problems_match(
        [(b.where, b.reason) for b in load.invalid],
        [
            (f"{p}:3", "missing required field(s): prompt"),
            (f"{p}:7", "missing required field(s): intent"),
            (f"{p}:8", "row has 7 fields but the header has 6"),
            (f"{p}:9", "field 'prompt' is empty or whitespace"),
            (f"{p}:10", f"duplicate id 'c-1' (first seen at {p}:2)"),
        ],
    )
    assert load.invalid[2].seed_id == "c-5"
    with pytest.raises(SeedError) as info:
        load_seeds([p])
    assert [w for w, _ in info.value.problems] == [f"{p}:{n}" for n in (3, 7, 8, 9, 10)]


def test_parquet_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "s.parquet"
    table = pa.table(
        {
            "id": ["q-1", "q-2", "q-3", "q-4"],
            "prompt": ["first?", "second?", None, "fourth?"],
            "category": ["drugs_medication"] * 4,
            "intent": ["benign", "malicious", "benign", "sideways"],
            "score": [1.0, 2.0, 3.0, 4.0],  # extra column: ignored
        }
    )
    pq.write_table(table, path, row_group_size=2)
    load = load_seeds([str(path)], categories=CATEGORIES, on_invalid="skip")
    assert [(s.id, s.line, s.file) for s in load.seeds] == [("q-1", 1, str(path)), ("q-2", 2, str(path))]
    assert [(b.where, b.reason) for b in load.invalid] == [
        (f"{path}:row 3", "missing required field(s): prompt"),
        (f"{path}:row 4", "unknown intent 'sideways' (expected one of: benign, dual_use, malicious)"),
    ]
    with pytest.raises(SeedError) as info:
        load_seeds([str(path)])
    assert [w for w, _ in info.value.problems] == [f"{path}:row 3", f"{path}:row 4"]


def test_hf_source_from_a_local_file(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [seed_row(1), seed_row(2, intent="nope"), seed_row(3, extra="x")])
    src = f"hf:{path}"
    load = load_seeds([src], on_invalid="skip")
    assert [(s.id, s.file, s.line) for s in load.seeds] == [("t-1", src, 1), ("t-3", src, 3)]
    assert [b.where for b in load.invalid] == [f"{src}:row 2"]
    assert load.sources == [src]


def test_hf_source_from_a_local_directory_with_split(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    write_jsonl(root / "train.jsonl", [seed_row(1), seed_row(2)])
    write_jsonl(root / "test.jsonl", [seed_row(9, category="biology")])
    assert [s.id for s in load_seeds([f"hf:{root}"]).seeds] == ["t-1", "t-2"]
    test = load_seeds([f"hf:{root}@test"]).seeds
    assert [(s.id, s.file, s.line) for s in test] == [("t-9", f"hf:{root}@test", 1)]
    with pytest.raises(PipelineError) as info:
        load_seeds([f"hf:{root}@validation"])
    assert info.value.where == f"hf:{root}@validation" and "split" in info.value.hint


def test_hf_source_missing_gives_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError) as info:
        load_seeds([f"hf:{tmp_path / 'nowhere'}"])
    assert info.value.where == f"hf:{tmp_path / 'nowhere'}"
    assert "cannot load Hugging Face dataset" in info.value.message


def test_duplicate_ids_across_formats(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [seed_row(1)])
    pq.write_table(pa.Table.from_pylist([seed_row(2), seed_row(1)]), tmp_path / "b.parquet")
    with pytest.raises(SeedError) as info:
        load_seeds([str(tmp_path)])
    assert info.value.problems == [(f"{tmp_path / 'b.parquet'}:row 2", f"duplicate id 't-1' (first seen at {a}:1)")]


# ---------------------------------------------------------------------------------------------------------
# Directories and source-level errors
# ---------------------------------------------------------------------------------------------------------


def test_directory_reads_supported_files_sorted_and_ignores_readme_hidden_and_subdirs(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [seed_row(2)])
    write_jsonl(tmp_path / "a.jsonl", [seed_row(1)])
    (tmp_path / "c.csv").write_text("id,prompt,category,intent\nt-3,third?,biology,benign\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# seeds\n", encoding="utf-8")
    (tmp_path / ".gitkeep").write_text("", encoding="utf-8")
    (tmp_path / "archive").mkdir()
    write_jsonl(tmp_path / "archive" / "old.jsonl", [seed_row(99)])
    load = load_seeds([str(tmp_path)])
    assert [s.id for s in load.seeds] == ["t-1", "t-2", "t-3"]
    assert load.sources == [str(tmp_path / n) for n in ("a.jsonl", "b.jsonl", "c.csv")]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: [], "no seed sources given"),
        (lambda d: [str(d / "missing.jsonl")], "seed source not found"),
        (lambda d: [str(d)], "no seed files"),
        (lambda d: [str(_touch(d / "s.txt", "x"))], "unsupported seed file type '.txt'"),
        (lambda d: [str(_touch(d / "s.txt", "x").parent)], "unsupported file in seed directory"),
        (lambda d: [str(_touch(d / "s.jsonl", "\n \n"))], "no seed rows found"),
        (lambda d: [str(_touch(d / "s.parquet", "not parquet"))], "cannot read Parquet seed file"),
        (lambda d: [str(_touch(d / "s.json", '[\n  {"id": "x"}\n]\n'))], "looks like a JSON array"),
        (lambda d: [str(_touch(d / "s.jsonl", "{}\n")), str(d)], "listed more than once"),
        (lambda d: [str(_touch(d / "s.csv", 'id,prompt\n"a,"b\n'))], "malformed CSV"),
    ],
    ids=["no-sources", "missing", "empty-dir", "bad-ext", "bad-ext-in-dir", "empty-file", "not-parquet", "json-array", "twice", "bad-csv"],
)
def test_source_level_problems_raise_pipeline_error_with_where_and_hint(tmp_path, setup, message):
    sources = setup(tmp_path)
    with pytest.raises(PipelineError) as info:
        load_seeds(sources)
    assert not isinstance(info.value, SeedError)
    assert message in info.value.message
    assert info.value.hint
    if sources:
        assert info.value.where and str(tmp_path) in info.value.where


def _touch(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_raises_pipeline_error(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [seed_row(1)])
    path.chmod(0)
    with pytest.raises(PipelineError) as info:
        load_seeds([str(path)])
    assert info.value.where == str(path) and "cannot read" in info.value.message


# ---------------------------------------------------------------------------------------------------------
# sha256
# ---------------------------------------------------------------------------------------------------------


def test_sha256_is_stable_and_ignores_formatting_but_not_content(tmp_path):
    rows = [seed_row(1, notes="n"), seed_row(2)]
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    base = load_seeds([str(a)]).sha256
    assert load_seeds([str(a)]).sha256 == base

    reformatted = tmp_path / "reformatted.jsonl"
    reformatted.write_text(
        "\n".join(json.dumps(dict(reversed(list(r.items()))), indent=None, separators=(", ", " : ")) for r in rows)
        + "\n\n\n",
        encoding="utf-8",
    )
    assert load_seeds([str(reformatted)]).sha256 == base

    as_csv = tmp_path / "c.csv"
    as_csv.write_text("id,prompt,category,intent,notes\nt-1,question number 1?,chemistry,dual_use,n\n"
                      "t-2,question number 2?,chemistry,dual_use,\n", encoding="utf-8")
    assert load_seeds([str(as_csv)]).sha256 == base
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    assert load_seeds([str(tmp_path / "p.parquet")]).sha256 == base

    changed = write_jsonl(tmp_path / "changed.jsonl", [seed_row(1, notes="n"), seed_row(2, prompt="question number 2!")])
    reordered = write_jsonl(tmp_path / "reordered.jsonl", list(reversed(rows)))
    extra = write_jsonl(tmp_path / "extra.jsonl", [*rows, seed_row(3)])
    hashes = {load_seeds([str(p)]).sha256 for p in (changed, reordered, extra)}
    assert len(hashes) == 3 and base not in hashes


def test_sha256_covers_invalid_rows_too(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [seed_row(1), "not json 1"])
    b = write_jsonl(tmp_path / "b.jsonl", [seed_row(1), "not json 2"])
    assert load_seeds([str(a)], on_invalid="skip").sha256 != load_seeds([str(b)], on_invalid="skip").sha256


def test_sha256_is_the_same_in_a_fresh_process():
    here = load_seeds([str(SEEDS_DIR)]).sha256
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.seeds", str(SEEDS_DIR)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    assert f"sha256 {here}" in out
