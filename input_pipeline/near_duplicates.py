"""Near-duplicate detection: MinHash signatures over lexical-token shingles, banded LSH, pure numpy.

Settings (`NearDupSettings` defaults): shingles of 5 lexical tokens (whitespace-insensitive, see
`code_ngrams`); 128 MinHash functions (multiply-add mod 2**64 on the 64-bit shingle hash); LSH with 16 bands of
8 rows, which makes two files with Jaccard similarity 0.85 candidates with probability 0.994 (0.61 at 0.7,
0.07 at 0.5). A candidate pair counts as near-duplicate when the fraction of equal MinHash values (an unbiased
estimate of the Jaccard similarity of the shingle sets, standard error about 0.03 at 128 functions) is at
least 0.85, the threshold The Stack used for its near-deduplication. Near-duplicates are merged transitively
(union-find); of each cluster the first file (in corpus order) is kept.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from input_pipeline.code_ngrams import lexical_tokens, ngram_hashes, token_hashes

# Shingles processed per block when computing a signature (bounds memory to block x num_perm x 8 bytes).
_BLOCK = 4096


@dataclasses.dataclass(frozen=True)
class NearDupSettings:
    """Shingle size, MinHash and LSH parameters, and the similarity threshold (see the module docstring)."""
    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 16
    threshold: float = 0.85
    seed: int = 0

    def __post_init__(self):
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that LSH puts two files with this Jaccard similarity in a common bucket."""
        return 1.0 - (1.0 - jaccard ** self.rows) ** self.bands


def _hash_parameters(settings: NearDupSettings) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(settings.seed)
    a = rng.integers(0, 2**63, settings.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.integers(0, 2**63, settings.num_perm, dtype=np.uint64)
    return a, b


def shingle_hashes(text: str, shingle_size: int) -> np.ndarray:
    """Distinct uint64 hashes of the token shingles of `text`; a text shorter than one shingle is one shingle."""
    hashes = token_hashes(lexical_tokens(text))
    if len(hashes) == 0:
        return hashes
    return np.unique(ngram_hashes(hashes, min(shingle_size, len(hashes))))


def minhash_signature(text: str, settings: NearDupSettings) -> np.ndarray:
    """The uint64[num_perm] MinHash signature of `text` (all-max for a text without tokens)."""
    a, b = _hash_parameters(settings)
    shingles = shingle_hashes(text, settings.shingle_size)
    signature = np.full(settings.num_perm, np.iinfo(np.uint64).max, np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(shingles), _BLOCK):
            block = shingles[start:start + _BLOCK, None]
            np.minimum(signature, (block * a + b).min(axis=0), out=signature)
    return signature


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal MinHash values of two signatures."""
    return float(np.mean(sig_a == sig_b))


def near_duplicate_of(signatures: np.ndarray, settings: NearDupSettings) -> np.ndarray:
    """For signatures [N, num_perm] in corpus order: int64[N], -1 for a file kept, else the index of the kept
    file of its near-duplicate cluster."""
    n = len(signatures)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the earlier file stays the root

    rows = settings.rows
    for band in range(settings.bands):
        buckets: dict[bytes, list[int]] = {}
        band_values = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
        for i in range(n):
            buckets.setdefault(band_values[i].tobytes(), []).append(i)
        for members in buckets.values():
            # Greedy: each member joins the first earlier cluster head it is similar to.
            heads: list[int] = []
            for i in members:
                for h in heads:
                    if find(i) == find(h):
                        break
                    if estimated_jaccard(signatures[i], signatures[h]) >= settings.threshold:
                        union(i, h)
                        break
                else:
                    heads.append(i)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    return np.where(roots == np.arange(n), -1, roots)
