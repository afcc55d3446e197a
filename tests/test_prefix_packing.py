"""Prefix-LM token types on packed code rows: each packed segment's prompt (loss_mask 0) is its own
bidirectional block, so a packed row's logits are those of every segment run alone with its token_type_ids."""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx

from hrm_jax import families, losses
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

TINY = HrmTextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers_per_stack=1,
                     num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=2, L_bp_cycles=(0, 2),
                     pad_token_id=0, prefix_lm=True)
# Two packed examples: (prompt 3, code 3) and (prompt 4, code 2), then 2 padding tokens.
SEGMENTS = [(3, 3), (4, 2)]


def _packed_row():
    rng = np.random.default_rng(0)
    ids, seg, pos, loss_mask = [], [], [], []
    for k, (prompt, code) in enumerate(SEGMENTS, start=1):
        n = prompt + code
        ids += list(rng.integers(3, TINY.vocab_size, n))
        seg += [k] * n
        pos += list(range(n))
        loss_mask += [0] * prompt + [1] * code
    ids, seg, pos, loss_mask = ids + [0, 0], seg + [0, 0], pos + [0, 0], loss_mask + [0, 0]
    batch = {"inputs": ids, "targets": ids, "segment_ids": seg, "positions": pos, "loss_mask": loss_mask}
    return {k: jnp.asarray([v], jnp.int32) for k, v in batch.items()}


def test_prompt_token_types_mark_each_segments_prompt():
    tt = families.prompt_token_types(_packed_row())
    np.testing.assert_array_equal(tt[0], [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])


def test_packed_prefix_rows_equal_each_segment_alone():
    model = HrmText(TINY, rngs=nnx.Rngs(0))
    batch = _packed_row()
    tt = families.prompt_token_types(batch)
    packed = model.segment_logits(batch["inputs"], batch["segment_ids"], batch["positions"], tt)
    start = 0
    for prompt, code in SEGMENTS:
        n = prompt + code
        alone = model(input_ids_BS=batch["inputs"][:, start:start + n], token_type_ids_BS=tt[:, start:start + n])
        np.testing.assert_allclose(packed[:, start:start + n], alone, rtol=1e-5, atol=1e-5)
        start += n
    causal = model.segment_logits(batch["inputs"], batch["segment_ids"], batch["positions"])
    assert not np.allclose(causal[0, 0], packed[0, 0], atol=1e-3)  # the first prompt token sees its prompt


def test_the_train_loss_uses_the_prompt_blocks_only_with_prefix_lm():
    batch = _packed_row()
    labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
    for prefix_lm in (True, False):
        model = HrmText(dataclasses.replace(TINY, prefix_lm=prefix_lm), rngs=nnx.Rngs(0))
        tt = families.prompt_token_types(batch) if prefix_lm else None
        logits = model.segment_logits(batch["inputs"], batch["segment_ids"], batch["positions"], tt)
        expected = losses.softmax_cross_entropy(logits, labels)
        for chunked in (True, False):
            per_token, _, _ = families._causal_token_losses(model, batch, chunked=chunked)
            np.testing.assert_allclose(per_token, expected, rtol=1e-5, atol=1e-6)
