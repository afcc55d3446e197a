"""The puzzle-form transformer against TRM's original `Model_ACTV2` (models/recursive_reasoning/
transformers_baseline.py, never committed here: point `TRM_ORIGINAL_SRC` at a checkout of
SamsungSAILMontreal/TinyRecursiveModels): fp32, identical weights, 3 ACT training steps with the Q target,
exploration off; logits, q values and targets within 1e-4, halting and steps identical.

    TRM_ORIGINAL_SRC=/path/to/TinyRecursiveModels python -m pytest tests/test_transformer_parity.py -s
"""

import importlib
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model import act
from hrm_jax.model.transformer import Transformer, TransformerConfig

SRC = os.environ.get("TRM_ORIGINAL_SRC", "")
pytestmark = pytest.mark.skipif(not SRC, reason="set TRM_ORIGINAL_SRC to a TinyRecursiveModels checkout")


@pytest.mark.parametrize("pos,pdim", [("rope", 32), ("learned", 40), ("rope", 0)])
def test_puzzle_form_equals_the_original_transformers_baseline(pos, pdim):
    torch = pytest.importorskip("torch")
    sys.path.insert(0, SRC)
    tb = importlib.import_module("models.recursive_reasoning.transformers_baseline")
    B, S, D, N, L, V = 4, 12, 32, 2, 2, 11
    cfg = TransformerConfig(vocab_size=V, seq_len=S, num_layers=L, hidden_size=D, num_heads=N, head_dim=D // N,
                            intermediate_size=256, puzzle_emb_ndim=pdim, num_puzzle_identifiers=5, pos_encodings=pos,
                            halt_max_steps=3, halt_exploration_prob=0.0, forward_dtype="float32")
    ours = Transformer(cfg, rngs=nnx.Rngs(0))
    if ours.puzzle_emb is not None:
        ours.puzzle_emb[...] = jax.random.normal(jax.random.key(5), ours.puzzle_emb.shape)
    ours.q_head.kernel[...] = jax.random.normal(jax.random.key(6), ours.q_head.kernel.shape) * 0.3
    t = tb.Model_ACTV2(dict(batch_size=B, seq_len=S, puzzle_emb_ndim=pdim, num_puzzle_identifiers=5, vocab_size=V,
                            H_cycles=1, H_layers=L, hidden_size=D, expansion=4, num_heads=N, pos_encodings=pos,
                            halt_max_steps=3, halt_exploration_prob=0.0, forward_dtype="float32"))
    inner = t.inner
    g = lambda x: torch.tensor(np.asarray(x[...], np.float32))  # noqa: E731
    with torch.no_grad():
        inner.embed_tokens.embedding_weight.copy_(g(ours.embed_tokens.embedding))
        inner.lm_head.weight.copy_(g(ours.lm_head.kernel).T)
        inner.q_head.weight.copy_(g(ours.q_head.kernel).T)
        inner.q_head.bias.copy_(g(ours.q_head.bias))
        inner.H_init.copy_(g(ours.H_init))
        if pdim:
            inner.puzzle_emb.weights.copy_(g(ours.puzzle_emb))
        if pos == "learned":
            inner.embed_pos.embedding_weight.copy_(g(ours.embed_pos.embedding))
        for i, layer in enumerate(ours.layers.layers):
            tl = inner.H_level.layers[i]
            tl.self_attn.qkv_proj.weight.copy_(g(layer.self_attn.qkv_proj.kernel).reshape(D, -1).T)
            tl.self_attn.o_proj.weight.copy_(g(layer.self_attn.o_proj.kernel).T)
            tl.mlp.gate_up_proj.weight.copy_(g(layer.mlp.gate_up_proj.kernel).reshape(D, -1).T)
            tl.mlp.down_proj.weight.copy_(g(layer.mlp.down_proj.kernel).T)
    rng = np.random.default_rng(0)
    batches = [{"inputs": rng.integers(0, V, (B, S)), "labels": rng.integers(0, V, (B, S)),
                "puzzle_identifiers": rng.integers(0, 5, (B,))} for _ in range(3)]
    t.train()
    tb_batch = lambda b: {k: torch.tensor(v, dtype=torch.int32) for k, v in b.items()}
    tcarry = t.initial_carry(tb_batch(batches[0]))
    ocarry = act.initial_carry(ours, {k: jnp.asarray(v, jnp.int32) for k, v in batches[0].items()})
    worst = 0.0
    for step, b in enumerate(batches):
        with torch.no_grad():
            tcarry, tout = t(tcarry, tb_batch(b), compute_target_q=True)
        draws = act.exploration_draws(jax.random.key(step), B, 3)
        ocarry, oout = act.act_step(ours, ocarry, {k: jnp.asarray(v, jnp.int32) for k, v in b.items()},
                                    training=True, draws=draws)
        for k in ("logits", "q_halt_logits", "q_continue_logits", "target_q_continue"):
            worst = max(worst, float(np.abs(tout[k].numpy() - np.asarray(oout[k])).max()))
        assert (tcarry.halted.numpy() == np.asarray(ocarry.halted)).all()
        assert (tcarry.steps.numpy() == np.asarray(ocarry.steps)).all()
    print(f"\npos={pos} puzzle_emb_ndim={pdim}: 3 ACT train steps, max |diff| logits/q/target {worst:.2e}")
    assert worst <= 1e-4
