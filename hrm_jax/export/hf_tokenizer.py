"""Our SentencePiece code tokenizer as a Hugging Face `tokenizers` BPE: `tokenizer.json` + `tokenizer_config.json`.

The SentencePiece model is a BPE with identity normalisation, no dummy prefix and byte fallback, so it maps to a
`tokenizers` BPE with no normalizer and no pre-tokenizer whose vocabulary spells SentencePiece's space stand-in
U+2581 as a real space. A literal U+2581 in the text is then unknown to the vocabulary and falls back to its UTF-8
bytes, which is exactly what `SentencePieceTokenizer.encode` does with it. Merges are every split of every
normal piece into two normal pieces, ranked by the merged piece's score (SentencePiece merges the adjacent pair
whose concatenation scores highest). Control tokens (pad, bos, eos) are special added tokens that the text cannot
produce (`split_special_tokens`), as in SentencePiece; the markers (<PROMPT>, <CODE>, ...) are non-special added
tokens matched in the text and decoded back to it, as SentencePiece's user-defined pieces are.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Tokenizer, decoders, models

from input_pipeline.tokenizer import SentencePieceTokenizer

# sentencepiece ModelProto.SentencePiece.Type (also llama.cpp's token types).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
META_SPACE = "\u2581"
SP_MODEL_BPE = 2


@dataclasses.dataclass(frozen=True)
class Piece:
    text: str    # as SentencePiece stores it (U+2581 for a space)
    score: float
    type: int


def sp_pieces(tokenizer: SentencePieceTokenizer) -> list[Piece]:
    """Every vocabulary entry of the SentencePiece model, by id. Raises ValueError for a model that is not BPE."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(tokenizer.serialized_model())
    if proto.trainer_spec.model_type != SP_MODEL_BPE:
        raise ValueError(f"SentencePiece model type {proto.trainer_spec.model_type} is not BPE ({SP_MODEL_BPE}); "
                         "only BPE code tokenizers (input_pipeline.train_tokenizer) can be exported")
    norm = proto.normalizer_spec
    if norm.add_dummy_prefix or norm.remove_extra_whitespaces or norm.name not in ("identity", ""):
        raise ValueError(f"SentencePiece normaliser {norm.name!r} (add_dummy_prefix={norm.add_dummy_prefix}, "
                         f"remove_extra_whitespaces={norm.remove_extra_whitespaces}) is not whitespace-exact; "
                         "expected identity, no dummy prefix, no whitespace removal")
    return [Piece(p.piece, p.score, p.type) for p in proto.pieces]


def _merges(vocab: dict[str, int], pieces: list[Piece]) -> list[tuple[str, str]]:
    ranked = []
    for i, p in enumerate(pieces):
        if p.type != NORMAL or len(p.text) < 2:
            continue
        text = p.text.replace(META_SPACE, " ")
        for cut in range(1, len(text)):
            left, right = text[:cut], text[cut:]
            if left in vocab and right in vocab:
                ranked.append((-p.score, i, vocab[left], vocab[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_tokenizer(tokenizer: SentencePieceTokenizer) -> Tokenizer:
    """The `tokenizers.Tokenizer` that encodes and decodes like `tokenizer` (ids equal, text round-trips)."""
    pieces = sp_pieces(tokenizer)
    vocab: dict[str, int] = {}
    for i, p in enumerate(pieces):
        key = p.text.replace(META_SPACE, " ") if p.type == NORMAL else p.text
        if key in vocab:
            raise ValueError(f"SentencePiece pieces {vocab[key]} and {i} both map to {key!r}")
        vocab[key] = i
    normal = {k: i for k, i in vocab.items() if pieces[i].type in (NORMAL, UNKNOWN, BYTE)}
    bpe = models.BPE(vocab=vocab, merges=_merges(normal, pieces), unk_token=pieces[tokenizer.unk_id].text,
                     byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(bpe)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    added = []
    for i, p in enumerate(pieces):
        if p.type in (CONTROL, USER_DEFINED):
            added.append(AddedToken(p.text, special=p.type == CONTROL, normalized=False, single_word=False,
                                    lstrip=False, rstrip=False))
    tok.add_tokens(added)
    for t in added:
        if vocab[t.content] != tok.token_to_id(t.content):
            raise ValueError(f"added token {t.content!r} got id {tok.token_to_id(t.content)}, expected "
                             f"{vocab[t.content]}")
    return tok


def tokenizer_config(tokenizer: SentencePieceTokenizer) -> dict:
    """`tokenizer_config.json`: the generic fast tokenizer, our special tokens, no bos/eos added, no cleanup."""
    pieces = sp_pieces(tokenizer)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": pieces[tokenizer.bos_id].text, "eos_token": pieces[tokenizer.eos_id].text,
        "pad_token": pieces[tokenizer.pad_id].text, "unk_token": pieces[tokenizer.unk_id].text,
        "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "split_special_tokens": True, "model_max_length": 1_000_000_000,
        "extra_special_tokens": [],
    }


def save_tokenizer(tokenizer: SentencePieceTokenizer, path: str | Path) -> Path:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and the SentencePiece model
    (`tokenizer.model`, for tools that read it) into `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    build_tokenizer(tokenizer).save(str(path / "tokenizer.json"))
    config = tokenizer_config(tokenizer)
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    specials = {k: config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    (path / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    tokenizer.save(path / "tokenizer.model")
    return path
