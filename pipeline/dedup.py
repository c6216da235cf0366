"""Exact and near-duplicate prompt removal: normalised-text ids, then MinHash LSH over word n-grams.

Works on numpy arrays (signatures are n x num_perm uint32, band buckets from `np.unique`), so 100k+ prompts
fit in tens of MB. The first occurrence in input order is kept; a later prompt is a near duplicate only of an
earlier *kept* prompt, found among the first MAX_BUCKET_REPRESENTATIVES kept members of the buckets it shares,
so the result is deterministic and memory stays bounded even when thousands of prompts share a bucket.
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
    out = []
    batch: list[np.ndarray] = []

    def flush() -> None:  # one vectorised pass per batch: hash every shingle, min per text with reduceat
        lengths = np.fromiter((len(x) for x in batch), dtype=np.int64, count=len(batch))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        hv = (np.concatenate(batch)[:, None] * a[None, :] + b[None, :]) % _PRIME
        out.append(np.minimum.reduceat(hv, starts, axis=0).astype(np.uint32))
        batch.clear()

    for text in texts:
        batch.append(_shingles(text, ngram))
        if len(batch) == 2048:
            flush()
    if batch:
        flush()
    return np.vstack(out) if out else np.zeros((0, num_perm), dtype=np.uint32)


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
    bucket = _band_buckets(sig, bands)  # (bands, m): bucket id per band, -1 for a bucket of one
    reps: list[dict[int, list[int]]] = [{} for _ in range(bands)]  # per band: bucket -> earliest kept members
    for j in range(len(candidates)):
        mine = [(b, int(bucket[b, j])) for b in range(bands) if bucket[b, j] >= 0]
        if not mine:
            continue  # shares no band with anything: cannot be a near duplicate, and nothing can duplicate it
        earlier = sorted({k for b, key in mine for k in reps[b].get(key, ())})
        if earlier:
            agree = (sig[earlier] == sig[j]).mean(axis=1)
            hit = np.flatnonzero(agree >= threshold)
            if hit.size:
                dup_of[idx[j]], kind[idx[j]] = idx[earlier[hit[0]]], "near"
                continue
        for b, key in mine:  # j is kept: it may absorb later prompts of its buckets
            members = reps[b].setdefault(key, [])
            if len(members) < MAX_BUCKET_REPRESENTATIVES:
                members.append(j)
    return DedupResult(dup_of, kind)


def _band_buckets(sig: np.ndarray, bands: int) -> np.ndarray:
    """For each LSH band, a bucket id per row (rows with equal band hashes share it); -1 where a row is alone."""
    m, rows = sig.shape[0], sig.shape[1] // bands
    out = np.full((bands, m), -1, dtype=np.int64)
    for band in range(bands):
        chunk = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
        keys = chunk.view(np.dtype((np.void, chunk.dtype.itemsize * rows))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        out[band, shared] = inverse[shared]
    return out
