"""The tokenizer interface the pipeline codes against, and its whitespace-exact SentencePiece implementation.

Every text round-trips: `decode(encode(text)) == text` for any valid Unicode string, indentation, tabs,
CR/LF and trailing spaces included (identity normalisation, byte fallback, and an explicit escape for the
one character SentencePiece reserves, U+2581 '▁').
"""
from __future__ import annotations

import hashlib
import os
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import sentencepiece as spm

from input_pipeline.code_languages import LANGUAGE_TAGS

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
# Fixed ids of the control tokens, the same in every model trained by `tokenizer_training`.
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

TASK_MARKERS = ("<PROMPT>", "<TESTS>", "<CODE>", "<FEEDBACK>")
PLAN_MARKERS = (
    "<PLAN>", "</PLAN>", "<STEP>", "<INTENT:FIX>", "<INTENT:ADD>", "<INTENT:REFACTOR>",
    "<VALIDATE>", "<SYNTAX_OK>", "<SYNTAX_ERR>",
)
# Markers are user-defined pieces: always one token, and `decode` writes them back as text.
MARKERS = TASK_MARKERS + PLAN_MARKERS
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK) + MARKERS
# Optional special tokens: found when a model was trained with them (the code tokenizer's "<lang:go>", ...).
OPTIONAL_SPECIAL_TOKENS = LANGUAGE_TAGS

_META_SPACE = "\u2581"  # SentencePiece's stand-in for ' '; a literal one is encoded as its UTF-8 bytes.
# A probe of the whitespace a code tokenizer must keep; a model that does not round-trip it is refused.
_WHITESPACE_PROBE = "  def f():\n\tx = 1  \r\n\n    return x\t \n"


class TokenizerMismatchError(ValueError):
    """Token ids or a fingerprint that belong to a different tokenizer than the one loaded."""


@runtime_checkable
class Tokenizer(Protocol):
    """What the input pipeline needs from a tokenizer."""

    @property
    def vocab_size(self) -> int: ...
    @property
    def pad_id(self) -> int: ...
    @property
    def bos_id(self) -> int: ...
    @property
    def eos_id(self) -> int: ...
    @property
    def unk_id(self) -> int: ...
    @property
    def special_token_ids(self) -> Mapping[str, int]: ...
    def special_id(self, name: str) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def fingerprint(self) -> str: ...


class SentencePieceTokenizer:
    """A `Tokenizer` backed by a serialized SentencePiece model; checks on load that it is whitespace-exact."""

    def __init__(self, model_proto: bytes, source: str = "<serialized model>"):
        self._source = source
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self._proto)
        except Exception as e:  # sentencepiece raises RuntimeError/OSError depending on the damage
            raise ValueError(f"{source}: not a SentencePiece model ({e})") from e
        self._special = self._find_special_ids()
        self._meta_space_ids = self._byte_ids(_META_SPACE)
        probe = self.decode(self.encode(_WHITESPACE_PROBE))
        if probe != _WHITESPACE_PROBE:
            raise ValueError(
                f"{source}: model is not whitespace-exact ({_WHITESPACE_PROBE!r} decodes as {probe!r}); "
                "train it with input_pipeline.train_tokenizer (identity normalisation, no dummy prefix, "
                "no whitespace removal)")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SentencePieceTokenizer":
        """Loads a `.model` file."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer model not found: {path}")
        with open(path, "rb") as f:
            return cls(f.read(), source=path)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the serialized model; `load` on the file gives back the same fingerprint."""
        with open(path, "wb") as f:
            f.write(self._proto)

    def serialized_model(self) -> bytes:
        return self._proto

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        return self._special[PAD]

    @property
    def bos_id(self) -> int:
        return self._special[BOS]

    @property
    def eos_id(self) -> int:
        return self._special[EOS]

    @property
    def unk_id(self) -> int:
        return self._special[UNK]

    @property
    def special_token_ids(self) -> Mapping[str, int]:
        """Name -> id of every special token this model has (control tokens and the markers it was trained with)."""
        return dict(self._special)

    def special_id(self, name: str) -> int:
        """The id of a special token by its text, e.g. "<CODE>"."""
        try:
            return self._special[name]
        except KeyError:
            raise KeyError(
                f"{self._source}: no special token {name!r}; this model has {sorted(self._special)}") from None

    def piece(self, token_id: int) -> str:
        """The vocabulary entry of one id (for debugging and inspection)."""
        self._check_ids([token_id])
        return self._sp.id_to_piece(int(token_id))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without bos/eos."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__}")
        if _META_SPACE not in text:
            return self._sp.encode(text)
        ids: list[int] = []
        for i, part in enumerate(text.split(_META_SPACE)):
            if i:
                ids.extend(self._meta_space_ids)
            ids.extend(self._sp.encode(part))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; pad, bos and eos decode to nothing, markers to their text."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
        self._check_ids(ids)
        return self._sp.decode(ids)

    def fingerprint(self) -> str:
        """sha256 (hex) of the serialized model: the identity to store beside tokenized data."""
        return hashlib.sha256(self._proto).hexdigest()

    def _check_ids(self, ids: Sequence[int]) -> None:
        n = self.vocab_size
        for pos, i in enumerate(ids):
            if not 0 <= i < n:
                raise TokenizerMismatchError(
                    f"token id {i} at position {pos} is outside the vocabulary of {self._source} "
                    f"(size {n})")

    def _find_special_ids(self) -> dict[str, int]:
        sp = self._sp
        found = {PAD: sp.pad_id(), BOS: sp.bos_id(), EOS: sp.eos_id(), UNK: sp.unk_id()}
        missing = [name for name, i in found.items() if i < 0]
        if missing:
            raise ValueError(f"{self._source}: model has no {missing} token(s)")
        for name in MARKERS + OPTIONAL_SPECIAL_TOKENS:
            i = sp.piece_to_id(name)
            if i != sp.unk_id() and sp.id_to_piece(i) == name:
                found[name] = i
        return found

    def _byte_ids(self, text: str) -> list[int]:
        ids = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in text.encode("utf-8")]
        if not all(self._sp.is_byte(i) for i in ids):
            raise ValueError(f"{self._source}: model was trained without byte_fallback; it cannot encode "
                             "every text exactly")
        return ids


class HFTokenizer:
    """A `Tokenizer` over a Hugging Face tokenizer folder (`tokenizer.json`, `tokenizer_config.json`), e.g.
    HRM-Text-1B's byte-level BPE: special tokens from the config, markers when the vocabulary has them."""

    def __init__(self, folder: str | os.PathLike):
        import json  # noqa: PLC0415

        from tokenizers import Tokenizer as _Tokenizer  # noqa: PLC0415

        self._source = os.path.join(os.fspath(folder), "tokenizer.json")
        if not os.path.isfile(self._source):
            raise FileNotFoundError(f"tokenizer not found: {self._source}")
        with open(self._source, "rb") as f:
            self._bytes = f.read()
        self._tok = _Tokenizer.from_str(self._bytes.decode("utf-8"))
        config_file = os.path.join(os.fspath(folder), "tokenizer_config.json")
        config = {}
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as f:
                config = json.load(f)
        self._special: dict[str, int] = {}
        for key, default in (("pad_token", PAD), ("bos_token", BOS), ("eos_token", EOS), ("unk_token", UNK)):
            text = config.get(key) or default
            text = text["content"] if isinstance(text, dict) else text
            token_id = self._tok.token_to_id(text)
            if token_id is not None:
                self._special[{"pad_token": PAD, "bos_token": BOS, "eos_token": EOS, "unk_token": UNK}[key]] = token_id
        if EOS not in self._special:
            raise ValueError(f"{config_file}: no eos token in the vocabulary of {self._source}")
        for name in MARKERS:
            token_id = self._tok.token_to_id(name)
            if token_id is not None:
                self._special[name] = token_id

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return self._special.get(PAD, self._special[EOS])

    @property
    def bos_id(self) -> int:
        return self._special.get(BOS, self._special[EOS])

    @property
    def eos_id(self) -> int:
        return self._special[EOS]

    @property
    def unk_id(self) -> int:
        return self._special.get(UNK, -1)

    @property
    def special_token_ids(self) -> Mapping[str, int]:
        return dict(self._special)

    def special_id(self, name: str) -> int:
        try:
            return self._special[name]
        except KeyError:
            raise KeyError(f"{self._source}: no special token {name!r}; it has {sorted(self._special)}") from None

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
        controls = {self._special.get(k) for k in (PAD, BOS, EOS)}
        return self._tok.decode([i for i in ids if i not in controls], skip_special_tokens=False)

    def fingerprint(self) -> str:
        """sha256 (hex) of tokenizer.json."""
        return hashlib.sha256(self._bytes).hexdigest()


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The one loader: a SentencePiece `.model` file, or a folder holding one as `tokenizer.model` (our exports),
    else a Hugging Face tokenizer folder (`tokenizer.json`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "tokenizer.model")):
            return SentencePieceTokenizer.load(os.path.join(path, "tokenizer.model"))
        return HFTokenizer(path)
    return SentencePieceTokenizer.load(path)


def verify_fingerprint(tokenizer: Tokenizer, expected: str, source: str) -> None:
    """Raises `TokenizerMismatchError` unless `source` (e.g. a tokenized data set) was made by `tokenizer`."""
    actual = tokenizer.fingerprint()
    if actual != expected:
        raise TokenizerMismatchError(
            f"{source} was tokenized with tokenizer sha256 {expected}, but the loaded tokenizer is {actual}")


def verify_token_ids(ids: Sequence[int] | np.ndarray, vocab_size: int, source: str) -> None:
    """Raises `TokenizerMismatchError` if any id in `ids` (from `source`) lies outside [0, vocab_size)."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return
    if not np.issubdtype(arr.dtype, np.integer):
        raise TokenizerMismatchError(f"{source}: token ids must be integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr.reshape(-1) < 0) | (arr.reshape(-1) >= vocab_size))
    if bad.size:
        pos = int(bad[0])
        raise TokenizerMismatchError(
            f"{source}: token id {int(arr.reshape(-1)[pos])} at flat position {pos} is outside the tokenizer's "
            f"vocabulary (size {vocab_size}); {bad.size} id(s) out of range: was it tokenized with another "
            "tokenizer?")
