"""Exact and near-duplicate prompt removal: normalised-text ids, then MinHash LSH over word n-grams.

Works on numpy arrays (signatures are n x num_perm uint32) so 100k+ prompts fit in tens of MB; the candidate
pairs come from sorting band hashes, not from a Python dict per band. The first occurrence in input order is
kept; a later prompt is a near duplicate only of an earlier *kept* prompt, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import xxhash

from pipeline.records import normalise_text

_PRIME = np.uint64(4294967291)  # largest prime below 2**32: products of 32-bit values fit in uint64
MAX_BUCKET_REPRESENTATIVES = 64  # a later prompt is compared with at most this many earlier ones per LSH bucket


@dataclass(frozen=True, slots=True)
class DedupResult:
    """`duplicate_of[i]` is the index of the kept prompt that i duplicates, or -1 when i is kept."""

    duplicate_of: np.ndarray
    kind: list[str | None]  # None | "exact" | "near"

    @property
    def n_exact(self) -> int:
        return sum(k == "exact" for k in self.kind)

    @property
    def n_near(self) -> int:
        return sum(k == "near" for k in self.kind)


def _shingles(text: str, ngram: int) -> np.ndarray:
    words = normalise_text(text).split()
    if len(words) < ngram:
        grams = [" ".join(words)]
    else:
        grams = [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
    return np.fromiter((xxhash.xxh32_intdigest(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))


def _perms(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234567)
    a = rng.integers(1, int(_PRIME), size=num_perm, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(texts: Iterable[str], *, num_perm: int, ngram: int) -> np.ndarray:
    """MinHash signatures (n x num_perm, uint32) of the texts' word n-gram sets."""
    a, b = _perms(num_perm)
    rows = []
    for text in texts:
        sh = _shingles(text, ngram)[:, None]
        hv = (sh * a[None, :] + b[None, :]) % _PRIME
        rows.append(hv.min(axis=0).astype(np.uint32))
    return np.vstack(rows) if rows else np.zeros((0, num_perm), dtype=np.uint32)


def find_duplicates(
    prompt_ids: Sequence[str], texts: Sequence[str], *, threshold: float, ngram: int, num_perm: int, bands: int
) -> DedupResult:
    """Mark exact duplicates (same prompt_id) and near duplicates (estimated Jaccard >= threshold)."""
    n = len(texts)
    dup_of = np.full(n, -1, dtype=np.int64)
    kind: list[str | None] = [None] * n
    first: dict[str, int] = {}
    for i, pid in enumerate(prompt_ids):
        if pid in first:
            dup_of[i], kind[i] = first[pid], "exact"
        else:
            first[pid] = i
    candidates = [i for i in range(n) if dup_of[i] < 0]
    if len(candidates) < 2:
        return DedupResult(dup_of, kind)
    idx = np.asarray(candidates, dtype=np.int64)
    sig = minhash_signatures((texts[i] for i in candidates), num_perm=num_perm, ngram=ngram)
    rows = num_perm // bands
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        chunk = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
        keys = np.array([xxhash.xxh64_intdigest(r.tobytes()) for r in chunk], dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends):
            if e - s > 1:
                members = np.sort(order[s:e])
                reps = members[:MAX_BUCKET_REPRESENTATIVES]
                for j in range(1, len(members)):
                    for k in reps[: min(j, len(reps))]:
                        pairs.add((int(k), int(members[j])))
    by_later: dict[int, list[int]] = {}
    for early, late in pairs:
        by_later.setdefault(late, []).append(early)
    for late in sorted(by_later):
        for early in sorted(by_later[late]):
            if dup_of[idx[early]] >= 0:
                continue  # only kept prompts absorb near duplicates
            if float(np.mean(sig[early] == sig[late])) >= threshold:
                dup_of[idx[late]], kind[idx[late]] = idx[early], "near"
                break
    return DedupResult(dup_of, kind)
