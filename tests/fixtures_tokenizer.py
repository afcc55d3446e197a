"""Shared test inputs: the MBPP data dir and a small code tokenizer trained once per test session.

Importing this module defaults $HRM_JAX_DATA_DIR to the `shared/data` folder beside the repository.
"""
import functools
import json
import os
import pathlib
import sysconfig

import pytest

from input_pipeline.tokenizer import SentencePieceTokenizer
from input_pipeline.tokenizer_training import train_sentencepiece

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("HRM_JAX_DATA_DIR", str(REPO_ROOT.parent / "shared" / "data"))

TEST_VOCAB_SIZE = 2048
STDLIB = pathlib.Path(sysconfig.get_paths()["stdlib"])


def data_dir() -> pathlib.Path:
    """The folder holding mbpp/mbpp.jsonl that the tests read."""
    return pathlib.Path(os.environ["HRM_JAX_DATA_DIR"])


def mbpp_jsonl_records() -> list[dict]:
    """The raw lines of the full MBPP file, parsed without the module under test."""
    with open(data_dir() / "mbpp" / "mbpp.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def stdlib_files(part: int) -> list[pathlib.Path]:
    """Top-level stdlib modules: part 0 is the training sample, part 1 a disjoint held-out sample."""
    files = sorted(STDLIB.glob("*.py"))
    return files[part::4]


@functools.lru_cache(maxsize=None)
def session_tokenizer() -> SentencePieceTokenizer:
    """Trained on stdlib sample 0 plus the code and text of MBPP's train split (tasks 601-974)."""
    docs = [p.read_text(encoding="utf-8") for p in stdlib_files(0)]
    for r in mbpp_jsonl_records():
        if r["task_id"] >= 601:
            docs += [r["text"], r["code"], "\n".join(r["test_list"])]
    return train_sentencepiece(docs, TEST_VOCAB_SIZE, num_threads=2)


@pytest.fixture(scope="session")
def tokenizer() -> SentencePieceTokenizer:
    return session_tokenizer()
