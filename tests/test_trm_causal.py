"""TRM as a causal LM for code: causality through every cycle and segment, one KV-cache site per network
application and layer, cached decoding equal to full recomputation, greedy generation as the recomputation's argmax,
and the code configs training it through the one train step."""

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import config as config_lib, data as data_lib, families, generate as gen, parallel, train
from hrm_jax.model import act
from hrm_jax.model.trm import TRM, TRMConfig

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from configs import mbpp, pretrain_python  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402

S, N_NEW = 6, 10
TINY = TRMConfig(vocab_size=48, seq_len=S + N_NEW, puzzle_emb_ndim=0, hidden_size=32, num_heads=2, H_cycles=2,
                 L_cycles=2, L_layers=2, halt_max_steps=2, forward_dtype="float32", causal=True)


@functools.partial(jax.jit, static_argnums=0)
def _act_infer(graphdef, state, batch):
    model = nnx.merge(graphdef, state)
    return act.act_infer(model, batch, max_steps=model.config.num_generation_segments)


def full_logits(model, ids_BT, mask_BT):
    """Recomputation: M = generation segments over the whole left-padded sequence (padding is segment 0; RoPE
    positions cumsum(mask) - 1, as generate)."""
    cfg = model.config.replace(seq_len=ids_BT.shape[1])
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: TRM(cfg, rngs=nnx.Rngs(0))))
    batch = {"inputs": jnp.asarray(ids_BT, jnp.int32), "segment_ids": jnp.asarray(mask_BT, jnp.int32),
             "positions": jnp.asarray(np.maximum(np.cumsum(mask_BT, axis=1) - 1, 0), jnp.int32)}
    outputs, steps = _act_infer(graphdef, nnx.state(model), batch)
    assert np.all(np.asarray(steps) == cfg.num_generation_segments)
    return np.asarray(outputs["logits"])


def test_a_later_token_changes_no_earlier_logit():
    model = TRM(TINY, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 48, (2, S + N_NEW))
    mask = np.ones_like(ids)
    base = full_logits(model, ids, mask)
    for t in (3, S + N_NEW - 1):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 7) % 47 + 1
        out = full_logits(model, changed, mask)
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert np.abs(out[:, t:] - base[:, t:]).max() > 1e-4


def test_one_cache_site_per_network_application_and_layer():
    sites, heads, head_dim = nnx.eval_shape(lambda: TRM(TINY, rngs=nnx.Rngs(0))).kv_cache_layout()
    assert (sites, heads, head_dim) == (2 * 2 * (2 + 1) * 2, 2, 16)  # segments x T x (n + 1) x layers


def test_cached_decoding_equals_full_recomputation_and_greedy_is_its_argmax():
    model = TRM(TINY, rngs=nnx.Rngs(0))
    ids = np.zeros((2, S), np.int64)
    mask = np.zeros((2, S), np.int32)
    rng = np.random.default_rng(1)
    for row, n in enumerate((4, 6)):  # left padding
        ids[row, S - n:], mask[row, S - n:] = rng.integers(3, 48, n), 1
    forced = rng.integers(3, 48, (2, N_NEW))
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, ids, mask, forced):
        m = nnx.merge(graphdef, state)
        cache = gen.init_cache(m, ids.shape[0], ids.shape[1] + N_NEW)
        logits, position, cache = gen.prefill(m, cache, ids, mask)

        def step(carry, token):
            position, cache = carry
            logits, cache = gen.decode_step(m, cache, token, position + 1)
            return (position + 1, cache), logits

        _, decoded = jax.lax.scan(step, (position, cache), forced.T)
        return logits, jnp.swapaxes(decoded, 0, 1)

    prefill, decoded = run(state, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(forced))
    full = full_logits(model, np.concatenate([ids, forced], 1), np.concatenate([mask, np.ones_like(forced)], 1))
    assert np.abs(np.asarray(prefill) - full[:, :S])[mask.astype(bool)].max() <= 1e-5
    assert np.abs(np.asarray(decoded) - full[:, S:]).max() <= 1e-5

    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW), attention_mask_BS=mask)
    tokens = np.asarray(out.tokens_BN)
    full = full_logits(model, np.concatenate([ids, tokens], 1), np.concatenate([mask, np.ones_like(tokens)], 1))
    np.testing.assert_array_equal(tokens, np.argmax(full[:, S - 1:S - 1 + N_NEW], axis=-1))


def test_code_configs_accept_the_switch_and_train_a_causal_trm(tmp_path):
    for module in (pretrain_python, mbpp):
        for variant in ("default", "tiny"):
            c = module.get_config(variant)
            c.model.family = "trm"
            config_lib.validate(c)
    c.model.trm.causal = False
    with pytest.raises(config_lib.ConfigError, match="model.trm.causal"):
        config_lib.validate(c)

    tokenizer = tmp_path / "code.model"
    session_tokenizer().save(tokenizer)
    c = mbpp.get_config("tiny")
    c.model.family = "trm"
    c.data.tokenizer, c.data.data_dir, c.data.seq_len = str(tokenizer), str(data_dir()), 64
    c.optim.lr_warmup_steps = 1
    config_lib.validate(c)
    ds, spec = data_lib.build(c, "train", workdir=str(tmp_path))
    family = families.build_family(c, spec.as_dict())
    assert family.name == "trm" and family.model_config.causal and family.code
    trainer = train.Trainer(c, family, spec.seq_len, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    state, batch = trainer.init_state(), train.put_batch(trainer, next(iter(ds)))
    losses = []
    for _ in range(10):  # one batch again and again: the loss must fall
        with jax.set_mesh(trainer.mesh):
            state, m = trainer.train_step(state, batch)
        losses.append(float(m["loss"]))
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses
