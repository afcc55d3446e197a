"""The per-element steps of the language-model pipeline, as picklable grain transforms.

Every step takes and returns numpy; tokenizers travel to grain workers as a serialized model (bytes) and are
loaded lazily, once per worker.
"""
from __future__ import annotations

from typing import Any

import grain
import grain.experimental
import numpy as np

from input_pipeline.code_languages import language_tag
from input_pipeline.prompts import instruction_example
from input_pipeline.tokenizer import SentencePieceTokenizer, Tokenizer

BATCH_KEYS = ("inputs", "targets", "segment_ids", "positions", "loss_mask")
# An upper bound on the pieces one example can be cut into (a 1 MB file at 64 tokens per row); grain only checks it.
MAX_PIECES = 1 << 16


class TokenizerHandle:
    """A `Tokenizer` that pickles small: a SentencePiece model as its bytes, reloaded on first use after
    unpickling; any other tokenizer is pickled as it is."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer: Tokenizer | None = tokenizer
        self._proto = tokenizer.serialized_model() if isinstance(tokenizer, SentencePieceTokenizer) else None

    def get(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = SentencePieceTokenizer(self._proto, source="<pipeline tokenizer>")
        return self._tokenizer

    def __getstate__(self) -> dict:
        if self._proto is not None:
            return {"_tokenizer": None, "_proto": self._proto}
        return dict(self.__dict__)


class TokenizeDocument(grain.transforms.Map):
    """Corpus record -> {"inputs": <s> text </s>, "loss_mask": all ones} (int32). A record with a "language"
    (the code corpus mixture) gets its tag after <s>: <s> <lang:go> text </s>."""

    def __init__(self, tokenizer: Tokenizer):
        self._handle = TokenizerHandle(tokenizer)

    def map(self, record: dict) -> dict:
        tok = self._handle.get()
        tag = [tok.special_id(language_tag(record["language"]))] if record.get("language") else []
        ids = np.asarray([tok.bos_id] + tag + tok.encode(record["text"]) + [tok.eos_id], np.int32)
        return {"inputs": ids, "loss_mask": np.ones_like(ids)}


class WithLanguage(grain.transforms.Map):
    """Adds "language" to a corpus record (the mixture's sources are one language each)."""

    def __init__(self, language: str):
        self.language = language

    def map(self, record: dict) -> dict:
        return {**record, "language": self.language}


class TokenizeMbppExample(grain.transforms.Map):
    """MBPP record -> {"inputs", "loss_mask"} of `prompts.instruction_example` (mask 1 on the code and </s>)."""

    def __init__(self, tokenizer: Tokenizer):
        self._handle = TokenizerHandle(tokenizer)

    def map(self, record: dict) -> dict:
        ids, mask = instruction_example(record, self._handle.get())
        return {"inputs": ids.astype(np.int32), "loss_mask": mask.astype(np.int32)}


class SplitLongExample(grain.experimental.FlatMapTransform):
    """Cuts an example longer than `max_len` into consecutive pieces of at most `max_len` tokens."""

    max_fan_out = MAX_PIECES

    def __init__(self, max_len: int):
        if max_len < 1:
            raise ValueError(f"max_len must be positive, got {max_len}")
        self.max_len = max_len

    def flat_map(self, example: dict) -> list[dict]:
        n = len(example["inputs"])
        if n <= self.max_len:
            return [example]
        return [{k: v[start:start + self.max_len] for k, v in example.items()}
                for start in range(0, n, self.max_len)]


class PackedToBatch(grain.transforms.Map):
    """Renames grain's packed features to the batch schema and fixes padding.

    In: inputs, loss_mask and their `*_segment_ids` / `*_positions` (grain's names). Out (int32): inputs (pad_id
    on padding), targets (= inputs), segment_ids (0 on padding), positions, loss_mask (0 on padding).
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def map(self, packed: dict) -> dict:
        segment_ids = np.asarray(packed["inputs_segment_ids"], np.int32)
        padding = segment_ids == 0
        inputs = np.where(padding, self.pad_id, np.asarray(packed["inputs"])).astype(np.int32)
        loss_mask = np.where(padding, 0, np.asarray(packed["loss_mask"])).astype(np.int32)
        positions = np.where(padding, 0, np.asarray(packed["inputs_positions"])).astype(np.int32)
        return {"inputs": inputs, "targets": inputs.copy(), "segment_ids": segment_ids, "positions": positions,
                "loss_mask": loss_mask}


class PadBatch(grain.transforms.Map):
    """Pads a short last batch to `batch_size` rows of padding (segment 0, loss_mask 0, inputs pad_id)."""

    def __init__(self, batch_size: int, pad_id: int):
        self.batch_size, self.pad_id = batch_size, pad_id

    def map(self, batch: dict) -> dict:
        missing = self.batch_size - len(batch["inputs"])
        if missing <= 0:
            return batch
        out = {}
        for key, value in batch.items():
            fill = self.pad_id if key in ("inputs", "targets") else 0
            pad = np.full((missing,) + value.shape[1:], fill, value.dtype)
            out[key] = np.concatenate([value, pad])
        return out


class ToPlainNumpy(grain.transforms.Map):
    """Copies a batch out of grain's shared-memory arrays into plain numpy arrays (in the main process)."""

    def map(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in batch.items()}


class TokenizeEditExample(grain.transforms.Map):
    """Codemod record -> {"inputs", "loss_mask"} of `edit_prompts.edit_example` for `stage` (mask 1 on the target
    and </s>)."""

    def __init__(self, tokenizer: Tokenizer, stage: str):
        self._handle, self._stage = TokenizerHandle(tokenizer), stage

    def map(self, record) -> dict:
        from input_pipeline.edit_prompts import edit_example  # noqa: PLC0415

        ids, mask = edit_example(record, self._handle.get(), self._stage)
        return {"inputs": ids, "loss_mask": mask}
