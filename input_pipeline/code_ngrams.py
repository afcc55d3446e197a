"""Whitespace-insensitive lexical tokens of source text and deterministic 64-bit hashes of their n-grams.

A lexical token is a run of word characters (identifier, keyword, number) or one other non-space character;
whitespace only separates tokens, so re-indenting or re-spacing code leaves its tokens unchanged. Hashes do
not depend on PYTHONHASHSEED: they are the same in every process and every run.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")
# Odd multiplier of the rolling n-gram hash (arithmetic mod 2**64).
_ROLL = np.uint64(0x9E3779B97F4A7C15)


def lexical_tokens(text: str) -> list[str]:
    """Identifiers/keywords/numbers and single punctuation characters of `text`, in order."""
    return _TOKEN.findall(text)


def token_hashes(tokens: list[str]) -> np.ndarray:
    """A uint64 hash (blake2b, 8 bytes) of each token."""
    if not tokens:
        return np.zeros(0, np.uint64)
    unique, inverse = np.unique(np.asarray(tokens, dtype=object), return_inverse=True)
    table = np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for t in unique), dtype=np.uint64, count=len(unique))
    return table[inverse.reshape(-1)]


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """uint64 hashes of every window of `n` consecutive token hashes (empty if there are fewer than `n`)."""
    if n < 1:
        raise ValueError(f"n-gram size must be at least 1, got {n}")
    count = len(hashes) - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    acc = hashes[:count].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            acc = acc * _ROLL + hashes[j:j + count]
    return acc
