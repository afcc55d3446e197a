"""A model as a `complete(prompts, n, temperature, seed)` callable (models come from
`hrm_jax.restore.load_for_inference`): encode the prompts (task markers as their special ids), left-pad,
hrm_jax.generate, and decode up to the first stop token."""
from __future__ import annotations

import re
from collections.abc import Sequence

import jax
import numpy as np

from hrm_jax import generate as gen_lib
from input_pipeline.tokenizer import MARKERS, Tokenizer

_PAD_TO = 32  # prompt lengths are padded to a multiple of this, so few shapes compile


def encode_with_markers(tokenizer: Tokenizer, text: str) -> list[int]:
    """Ids of `text` where each marker the tokenizer has (<PROMPT>, <CODE>, ...) is its special id and the text
    between markers is encoded on its own (as input_pipeline.prompts.instruction_prompt_ids does)."""
    specials = {m: i for m, i in tokenizer.special_token_ids.items() if m in MARKERS}
    if not specials:
        return tokenizer.encode(text)
    ids: list[int] = []
    for part in re.split("(" + "|".join(map(re.escape, specials)) + ")", text):
        if part in specials:
            ids.append(specials[part])
        elif part:
            ids.extend(tokenizer.encode(part))
    return ids


def make_complete(model, tokenizer: Tokenizer, *, max_new_tokens: int = 256, batch_size: int = 8,
                  max_prompt_tokens: int = 1536):
    """`complete` over `model`: rows (prompt x sample) go batch_size at a time (the last batch padded); a
    prompt longer than max_prompt_tokens keeps its end. Generation stops at eos or a task marker."""
    stops = tuple(sorted({tokenizer.eos_id} | {i for m, i in tokenizer.special_token_ids.items() if m in MARKERS}))

    def complete(prompts: Sequence[str], n: int, temperature: float, seed: int) -> list[list[str]]:
        sampling = gen_lib.SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature,
                                          stop_tokens=stops, pad_token_id=tokenizer.pad_id)
        rows = [encode_with_markers(tokenizer, p)[-max_prompt_tokens:] for p in prompts for _ in range(n)]
        texts = []
        for b in range(0, len(rows), batch_size):
            batch = rows[b:b + batch_size]
            width = -(-max(len(r) for r in batch) // _PAD_TO) * _PAD_TO
            ids = np.full((batch_size, width), tokenizer.pad_id, np.int32)
            mask = np.zeros((batch_size, width), np.int32)
            ids[:, -1] = tokenizer.eos_id  # filler rows: one real token, output ignored
            mask[:, -1] = 1
            for i, row in enumerate(batch):
                ids[i, width - len(row):], mask[i, width - len(row):] = row, 1
            out = gen_lib.generate(model, ids, sampling, attention_mask_BS=mask,
                                   rng=jax.random.key(seed * 100_003 + b))
            tokens, lengths = np.asarray(out.tokens_BN), np.asarray(out.num_tokens_B)
            for i in range(len(batch)):
                row = tokens[i, :lengths[i]].tolist()
                texts.append(tokenizer.decode(row[:-1] if row and row[-1] in stops else row))
        return [texts[j * n:(j + 1) * n] for j in range(len(prompts))]

    return complete
