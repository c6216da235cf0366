"""Exact and near-duplicate removal: normalised ids, MinHash LSH, first-kept-wins, chains, bucket cap."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.dedup import MAX_BUCKET_REPRESENTATIVES, find_duplicates, minhash_signatures
from pipeline.records import prompt_id_for

DEFAULT = {"threshold": 0.8, "ngram": 3, "num_perm": 64, "bands": 16}
# Fine-grained settings for tests that need accurate Jaccard estimates: 512 permutations, one row per band, so
# every pair sharing any minhash is a candidate and the estimate's standard error is about 0.02.
PRECISE = {"ngram": 1, "num_perm": 512, "bands": 512}


def dedup(texts: list[str], **kw):
    return find_duplicates([prompt_id_for(t) for t in texts], texts, **{**DEFAULT, **kw})


def words(lo: int, hi: int) -> str:
    """Distinct words w<lo>..w<hi-1>: with ngram=1 the Jaccard of two such ranges is exact and easy to design."""
    return " ".join(f"w{i}" for i in range(lo, hi))


DISTINCT = [
    "How do I safely dispose of old prescription medication at home?",
    "What is the history of the Manhattan Project in broad strokes?",
    "Explain how public-key cryptography works to a ten year old.",
    "Which houseplants are toxic to cats and dogs?",
    "How do utility companies detect leaks in gas pipelines?",
]


def test_distinct_prompts_are_all_kept() -> None:
    res = dedup(DISTINCT)
    assert res.duplicate_of.tolist() == [-1] * len(DISTINCT)
    assert res.kind == [None] * len(DISTINCT) and res.n_exact == res.n_near == 0


def test_exact_duplicates_by_normalised_text_first_wins() -> None:
    texts = [DISTINCT[0], DISTINCT[1], "  how do I SAFELY dispose of old\nprescription medication at home? ", DISTINCT[0]]
    res = dedup(texts)
    assert res.duplicate_of.tolist() == [-1, -1, 0, 0]
    assert res.kind == [None, None, "exact", "exact"]
    assert (res.n_exact, res.n_near) == (2, 0)


def test_near_duplicates_above_threshold_point_at_the_earlier_prompt() -> None:
    base = "Describe in general terms how municipal water treatment plants remove pathogens before the water reaches homes"
    near = base + " today"  # 17 of 18 trigrams shared: Jaccard ~0.94
    res = dedup([DISTINCT[2], base, DISTINCT[3], near])
    assert res.duplicate_of.tolist() == [-1, -1, -1, 1]
    assert res.kind[3] == "near" and res.n_near == 1


def test_threshold_decides() -> None:
    a, b = words(0, 20), words(4, 24)  # Jaccard 16/24 = 0.67
    assert dedup([a, b], threshold=0.5, **PRECISE).duplicate_of.tolist() == [-1, 0]
    assert dedup([a, b], threshold=0.8, **PRECISE).duplicate_of.tolist() == [-1, -1]


def test_first_occurrence_wins_whatever_the_order() -> None:
    a, b = words(0, 30), words(1, 31)
    assert dedup([a, b], threshold=0.8, **PRECISE).duplicate_of.tolist() == [-1, 0]
    assert dedup([b, a], threshold=0.8, **PRECISE).duplicate_of.tolist() == [-1, 0]


def test_chain_is_judged_against_kept_prompts_only() -> None:
    a, b, c = words(0, 20), words(5, 25), words(10, 30)  # J(a,b) = J(b,c) = 0.6, J(a,c) = 0.33
    assert dedup([b, c], threshold=0.5, **PRECISE).duplicate_of.tolist() == [-1, 0]  # c alone near-dups b
    res = dedup([a, b, c], threshold=0.5, **PRECISE)
    assert res.duplicate_of.tolist() == [-1, 0, -1]  # b was dropped, so c is kept rather than dropped with it
    assert res.kind == [None, "near", None]


def test_near_duplicate_of_an_exact_duplicate_points_at_the_kept_one() -> None:
    a = words(0, 30)
    res = dedup([a, a, words(1, 31)], threshold=0.8, **PRECISE)
    assert res.duplicate_of.tolist() == [-1, 0, 0]
    assert res.kind == [None, "exact", "near"]


@pytest.mark.parametrize(
    ("texts", "expected", "n_exact"),
    [([], [], 0), (["only one prompt here"], [-1], 0), (["same", "same", "SAME "], [-1, 0, 0], 2)],
)
def test_empty_single_and_all_exact_inputs(texts: list[str], expected: list[int], n_exact: int) -> None:
    res = dedup(texts)
    assert res.duplicate_of.tolist() == expected and len(res.kind) == len(texts)
    assert (res.n_exact, res.n_near) == (n_exact, 0)


def test_short_texts_below_ngram_length_still_work() -> None:
    res = dedup(["kill process", "Kill  process", "kill process now", "hi", "", "!!!"])
    assert res.duplicate_of.tolist() == [-1, 0, -1, -1, -1, -1]
    assert res.kind == [None, "exact", None, None, None, None]


def test_bucket_larger_than_the_representative_cap_still_marks_every_member() -> None:
    n = MAX_BUCKET_REPRESENTATIVES * 3
    text = "a long enough prompt about pipeline inspection schedules for regional gas utilities"
    ids = [f"p{i}" for i in range(n)]  # distinct ids, identical text: every band puts them in one bucket
    res = find_duplicates(ids, [text] * n, **DEFAULT)
    assert res.duplicate_of.tolist() == [-1] + [0] * (n - 1)
    assert res.n_near == n - 1


def test_result_is_deterministic() -> None:
    texts = [words(i, i + 12) for i in range(0, 60, 2)]
    a = dedup(texts, threshold=0.7, ngram=1, num_perm=64, bands=32)
    b = dedup(texts, threshold=0.7, ngram=1, num_perm=64, bands=32)
    assert a.duplicate_of.tolist() == b.duplicate_of.tolist() and a.kind == b.kind
    assert a.n_near > 0  # consecutive windows overlap by 10/14: some are near duplicates at 0.7


def test_minhash_signature_estimates_jaccard() -> None:
    sig = minhash_signatures([words(0, 100), words(0, 100), words(50, 150), words(200, 300)], num_perm=512, ngram=1)
    assert sig.shape == (4, 512) and sig.dtype == np.uint32
    assert np.array_equal(sig[0], sig[1])
    assert abs(float(np.mean(sig[0] == sig[2])) - 50 / 150) < 0.08
    assert float(np.mean(sig[0] == sig[3])) < 0.05
    assert minhash_signatures([], num_perm=16, ngram=3).shape == (0, 16)
