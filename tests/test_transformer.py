"""The transformer baseline: parameter / FLOP counts and the sizing against a reference family, the family switch
in every config, the puzzle form under HRM's ACT step, the causal form's causality and KV-cached decoding, equal
losses on 1 and 8 devices, exact resume, and refusal of another family's checkpoint."""

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import checkpoint as ckpt_lib
from hrm_jax import config as config_lib, data as data_lib, families, generate as gen, parallel, resume, sizing, train
from hrm_jax.model import act
from hrm_jax.model.hrm import HRM
from hrm_jax.model.transformer import Transformer, TransformerConfig, num_params

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from configs import maze, mbpp, pretrain_python, sudoku, synthetic  # noqa: E402

SUDOKU_META = {"vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1001}
CODE_META = {"vocab_size": 16384, "seq_len": 1024, "num_puzzle_identifiers": 1, "pad_token_id": 0,
             "bos_token_id": 1, "eos_token_id": 2}
CAUSAL = TransformerConfig(vocab_size=64, seq_len=48, num_layers=2, hidden_size=32, num_heads=2, head_dim=16,
                           intermediate_size=64, causal=True, pre_norm=True, forward_dtype="float32")


def _transformer(config_module, variant="default", **fields):
    c = config_module.get_config(variant)
    c.model.family = "transformer"
    for k, v in fields.items():
        c.model.transformer[k] = v
    config_lib.validate(c)
    return c


def _abstract_param_count(model_cls, cfg) -> int:
    abstract = nnx.eval_shape(lambda: model_cls(cfg, rngs=nnx.Rngs(0)))
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))


# ----- counting and sizing -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    TransformerConfig(puzzle_emb_ndim=512, num_layers=3),
    TransformerConfig(pos_encodings="learned", num_layers=2, hidden_size=64, num_heads=12, head_dim=6,
                      intermediate_size=96, puzzle_emb_ndim=100),
    CAUSAL], ids=["puzzle-rope", "puzzle-learned-odd-heads", "causal"])
def test_param_formula_counts_the_built_model(cfg):
    assert num_params(cfg) == _abstract_param_count(Transformer, cfg)


def test_hrm_param_formula_counts_the_built_model():
    for variant in ("default", "tiny"):
        for pos in ("rope", "learned"):
            c = sudoku.get_config(variant)
            c.model.hrm.pos_encodings = pos
            hrm_cfg = config_lib.hrm_config(c, SUDOKU_META)
            assert sizing.hrm_num_params(hrm_cfg) == _abstract_param_count(HRM, hrm_cfg)
    assert sizing.hrm_num_params(config_lib.hrm_config(sudoku.get_config(), SUDOKU_META)) == 27_275_266


def test_equal_params_at_hrm_27m_is_eight_blocks_with_the_same_count():
    """HRM-27M is 4 + 4 blocks of the same width with the same embeddings and heads: the equal-parameter baseline
    has 8 blocks and exactly HRM's trainable parameter count (TRM's transformers_baseline.yaml: H_layers 8)."""
    family = families.build_family(_transformer(sudoku), SUDOKU_META)
    assert family.model_config.num_layers == 8 and family.model_config.hidden_size == 512
    assert family.num_params() == 27_275_266
    assert family.description.startswith("transformer: 8 layers, 27.28M params")
    assert "HRM ref 27.28M params" in family.description and family.description.endswith("equal params)")


def test_equal_flops_at_hrm_27m_is_one_block_per_hrm_block_application():
    """One HRM segment applies 2 x (2 x 4 + 4) = 24 blocks of the same width over the same row: the equal-FLOP
    baseline has 24 layers, and its forward FLOPs per token equal HRM's."""
    family = families.build_family(_transformer(sudoku, size_by="flops"), SUDOKU_META)
    hrm_cfg = config_lib.hrm_config(sudoku.get_config(), SUDOKU_META)
    assert family.model_config.num_layers == 24
    np.testing.assert_allclose(sizing.transformer_forward_flops_per_token(family.model_config),
                               sizing.hrm_forward_flops_per_token(hrm_cfg), rtol=1e-12)
    assert family.description.endswith("equal flops)")


def _nearest_check(cfg, target, by):
    got = sizing.transformer_measure(cfg, by)
    for n in (cfg.num_layers - 1, cfg.num_layers + 1):
        if n >= 1:
            other = sizing.transformer_measure(cfg.replace(num_layers=n), by)
            assert abs(got - target) <= abs(other - target), (by, cfg.num_layers, n)


@pytest.mark.parametrize("module,variant,meta", [(sudoku, "default", SUDOKU_META), (sudoku, "tiny", SUDOKU_META),
                                                 (pretrain_python, "default", CODE_META),
                                                 (pretrain_python, "tiny", CODE_META)])
@pytest.mark.parametrize("by", ["params", "flops"])
def test_sizing_picks_the_nearest_layer_count(module, variant, meta, by):
    c = _transformer(module, variant, size_by=by)
    cfg, ref = config_lib.transformer_config(c, meta)
    _nearest_check(cfg, sizing.reference_measure(ref, by), by)
    assert ref.family == ("hrm" if module is sudoku else "hrm_text")
    assert cfg.causal == (module is pretrain_python)
    if module is pretrain_python:  # the reference's own counts, independently: HRM-Text's formula
        hrm_text_cfg = config_lib.hrm_text_config(c, meta)
        assert ref.params == families.HrmTextFamily(hrm_text_cfg).num_params()
        assert (cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.intermediate_size) == (
            hrm_text_cfg.hidden_size, hrm_text_cfg.num_attention_heads, hrm_text_cfg.head_dim,
            hrm_text_cfg.intermediate_size)


def test_a_new_reference_family_plugs_in(monkeypatch):
    """TRM (or any family) joins by one SIZE_REFERENCES entry; sizing and the printed line follow it."""
    def fake(config, data_meta):
        return sizing.SizeReference("trm", params=6_828_034, forward_flops_per_token=1e9, hidden_size=512,
                                    num_heads=8, head_dim=64, intermediate_size=1536)

    monkeypatch.setitem(config_lib.SIZE_REFERENCES, "trm", fake)
    c = _transformer(sudoku, reference="trm")
    family = families.build_family(c, SUDOKU_META)
    _nearest_check(family.model_config, 6_828_034, "params")
    # TRM-Att Sudoku is 2 blocks of this width with the same embeddings and heads: the count is the paper's, exactly.
    assert family.model_config.num_layers == 2 and family.num_params() == 6_828_034
    assert "TRM ref 6.83M params" in family.description
    c.model.transformer.size_by = "flops"
    _nearest_check(families.build_family(c, SUDOKU_META).model_config, 1e9, "flops")


def test_explicit_width_and_layers():
    c = _transformer(sudoku, "tiny", num_layers=3, hidden_size=96, num_heads=3)
    cfg, _ = config_lib.transformer_config(c, SUDOKU_META)
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.intermediate_size) == (3, 96, 3, 32, 256)
    assert "layers set explicitly" in families.build_family(c, SUDOKU_META).description


# ----- the family switch and bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("module", [sudoku, maze, pretrain_python, mbpp, synthetic])
@pytest.mark.parametrize("variant", ["default", "tiny"])
def test_every_config_takes_the_family_switch(module, variant):
    c = _transformer(module, variant)
    code = c.data.kind in config_lib.CODE_DATA_KINDS
    meta = CODE_META if code else SUDOKU_META
    family = families.build_family(c, meta)
    assert family.name == "transformer" and family.code == code
    assert family.model_config.pre_norm == code  # llama's pre-norm for code, TRM's post-norm on puzzles
    assert family.batch_keys == (families.CODE_KEYS if code else families.PUZZLE_KEYS)


def test_unknown_family_and_bad_fields_are_named():
    c = sudoku.get_config("tiny")
    c.model.family = "mamba"
    with pytest.raises(config_lib.ConfigError, match="config.model.family: 'mamba' is not one of"):
        config_lib.validate(c)
    with pytest.raises(ValueError, match="config.model.family: 'mamba'"):
        families.build_family(c, SUDOKU_META)
    for field, value, message in (("size_by", "bytes", "config.model.transformer.size_by"),
                                  ("norm", "sandwich", "config.model.transformer.norm"),
                                  ("reference", "gpt", "config.model.transformer.reference")):
        c = sudoku.get_config("tiny")
        c.model.family = "transformer"
        c.model.transformer[field] = value
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.validate(c)
    c = pretrain_python.get_config("tiny")
    c.model.family = "transformer"
    c.model.transformer.norm = "post"
    with pytest.raises(config_lib.ConfigError, match="causal transformer is pre-norm"):
        config_lib.validate(c)


# ----- puzzle form ------------------------------------------------------------------------------------------------

def _puzzle_model(**changes):
    cfg = TransformerConfig(vocab_size=11, seq_len=9, num_layers=2, hidden_size=32, num_heads=2, head_dim=16,
                            intermediate_size=64, puzzle_emb_ndim=32, num_puzzle_identifiers=3,
                            forward_dtype="float32", **changes)
    return Transformer(cfg, rngs=nnx.Rngs(0))


def _puzzle_batch(b=4, s=9, seed=0):
    rng = np.random.default_rng(seed)
    return {"inputs": jnp.asarray(rng.integers(1, 11, (b, s)), jnp.int32),
            "labels": jnp.asarray(rng.integers(1, 11, (b, s)), jnp.int32),
            "puzzle_identifiers": jnp.asarray(rng.integers(0, 3, (b,)), jnp.int32)}


def test_puzzle_form_is_one_stack_call_on_h_init_plus_the_hrm_input_embedding():
    """TRM's Model_ACTV2_Inner: z_H = blocks(H_init + x) with HRM's input embedding (puzzle vector first,
    x sqrt(D)); logits drop the puzzle position; Q reads position 0."""
    model = _puzzle_model()
    model.puzzle_emb[...] = jax.random.normal(jax.random.key(1), model.puzzle_emb.shape)
    batch = _puzzle_batch()
    carry = model.reset_carry(jnp.ones((4,), bool), model.empty_carry(4))
    new_carry, logits, q_halt, _ = model(carry, batch)
    x = model.embed_tokens(batch["inputs"]) * np.sqrt(32)
    x = jnp.concatenate([model.puzzle_emb[...][batch["puzzle_identifiers"]][:, None] * np.sqrt(32), x], axis=1)
    cos, sin, _ = model.attention_context(None, None)
    z = x + model.H_init[...]
    for layer in model.layers.layers:
        z = layer(z, cos, sin, None)
    np.testing.assert_allclose(np.asarray(new_carry.z_H), np.asarray(z), atol=1e-5)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(model.lm_head(z)[:, 1:]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(q_halt), -5.0)  # weight 0, bias -5 at init
    assert logits.shape == (4, 9, 11)


def test_one_segment_means_every_slot_halts_after_one_step_and_no_q_target():
    model = _puzzle_model()
    batch = _puzzle_batch()
    carry = act.initial_carry(model, batch)
    draws = act.exploration_draws(jax.random.key(0), 4, 1)
    carry, outputs = act.act_step(model, carry, batch, training=True, draws=draws)
    assert np.all(np.asarray(carry.halted)) and np.all(np.asarray(carry.steps) == 1)
    assert "target_q_continue" not in outputs


def test_act_segments_carry_z_h_across_steps():
    """halt_max_steps > 1 is TRM's ACT baseline: unhalted slots keep their example and continue from z_H."""
    model = _puzzle_model(halt_max_steps=3)
    batch = _puzzle_batch()
    carry = act.initial_carry(model, batch)
    draws = act.exploration_draws(jax.random.key(0), 4, 3)
    carry1, out1 = act.act_step(model, carry, batch, training=True, draws=draws)
    assert "target_q_continue" in out1 and not np.any(np.asarray(carry1.halted))  # q_halt == q_continue at init
    carry2, out2 = act.act_step(model, carry1, _puzzle_batch(seed=1), training=True, draws=draws)
    np.testing.assert_array_equal(np.asarray(carry2.current_data["inputs"]), np.asarray(batch["inputs"]))
    assert np.abs(np.asarray(out2["logits"]) - np.asarray(out1["logits"])).max() > 1e-3  # z_H moved on
    outputs, steps = act.act_infer(model, batch)
    assert np.all(np.asarray(steps) == 3)


# ----- causal form ------------------------------------------------------------------------------------------------

def test_causal_form_refuses_puzzle_options():
    for bad in (dict(pre_norm=False), dict(pos_encodings="learned"), dict(puzzle_emb_ndim=32)):
        with pytest.raises(ValueError, match="llama's shape"):
            CAUSAL.replace(**bad)
    with pytest.raises(ValueError, match="no ACT segments"):
        Transformer(CAUSAL, rngs=nnx.Rngs(0))(None, {"inputs": jnp.ones((1, 3), jnp.int32)})
    with pytest.raises(ValueError, match="causal transformer"):
        _puzzle_model().hidden_states(jnp.ones((1, 3), jnp.int32), jnp.arange(3)[None], None)


def test_perturbing_a_later_token_changes_no_earlier_logit():
    model = Transformer(CAUSAL, rngs=nnx.Rngs(0))
    ids = np.random.default_rng(0).integers(3, 64, (2, 16))
    base = np.asarray(model.causal_logits(jnp.asarray(ids)))
    for t in (0, 7, 15):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 5) % 64
        out = np.asarray(model.causal_logits(jnp.asarray(changed)))
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert np.abs(out[:, t] - base[:, t]).max() > 1e-4  # the perturbed position itself does see it
    # Packed training rows: a later segment changes nothing in an earlier one, even at later positions.
    seg = np.array([[1] * 8 + [2] * 8] * 2)
    pos = np.array([list(range(8)) * 2] * 2)
    a = np.asarray(model.segment_logits(jnp.asarray(ids), jnp.asarray(seg), jnp.asarray(pos)))
    changed = ids.copy()
    changed[:, 8:] = (changed[:, 8:] + 1) % 64
    b = np.asarray(model.segment_logits(jnp.asarray(changed), jnp.asarray(seg), jnp.asarray(pos)))
    np.testing.assert_array_equal(a[:, :8], b[:, :8])


def _prompts(lengths, width, seed=0):
    rng = np.random.default_rng(seed)
    ids, mask = np.zeros((len(lengths), width), np.int32), np.zeros((len(lengths), width), np.int32)
    for row, n in enumerate(lengths):
        ids[row, width - n:] = rng.integers(3, 64, size=n)
        mask[row, width - n:] = 1
    return ids, mask


def test_cached_decoding_equals_full_recomputation():
    model = Transformer(CAUSAL, rngs=nnx.Rngs(0))
    assert model.kv_cache_layout() == (2, 2, 16)
    ids, mask = _prompts([5, 7], 7, seed=1)
    steps = 24
    forced = np.random.default_rng(2).integers(3, 64, size=(2, steps))
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, ids, mask, forced):
        m = nnx.merge(graphdef, state)
        cache = gen.init_cache(m, ids.shape[0], ids.shape[1] + steps)
        logits, position, cache = gen.prefill(m, cache, ids, mask)

        def step(carry, token):
            position, cache = carry
            logits, cache = gen.decode_step(m, cache, token, position + 1)
            return (position + 1, cache), logits

        _, decoded = jax.lax.scan(step, (position, cache), forced.T)
        return logits, jnp.swapaxes(decoded, 0, 1)

    prefill_logits, decoded = run(state, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(forced))
    full_ids, full_mask = np.concatenate([ids, forced], 1), np.concatenate([mask, np.ones_like(forced)], 1)
    positions = np.maximum(np.cumsum(full_mask, 1) - 1, 0)
    full = np.asarray(model.causal_logits(jnp.asarray(full_ids), jnp.asarray(full_mask), jnp.asarray(positions)))
    real = mask.astype(bool)
    assert np.abs(np.asarray(prefill_logits) - full[:, :7])[real].max() <= 1e-5
    assert np.abs(np.asarray(decoded) - full[:, 7:]).max() <= 1e-5
    # and greedy generation through the one loop is the argmax of the recomputation
    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=8), attention_mask_BS=mask)
    tokens = np.asarray(out.tokens_BN)
    g_ids, g_mask = np.concatenate([ids, tokens], 1), np.concatenate([mask, np.ones_like(tokens)], 1)
    g_full = np.asarray(model.causal_logits(jnp.asarray(g_ids), jnp.asarray(g_mask),
                                            jnp.asarray(np.maximum(np.cumsum(g_mask, 1) - 1, 0))))
    np.testing.assert_array_equal(tokens, np.argmax(g_full[:, 6:6 + 8], axis=-1))


# ----- through the train step: 1 vs 8 devices, resume, another family's checkpoint ---------------------------------

def _synthetic_config(**overrides):
    c = synthetic.get_config("tiny")
    c.model.family = "transformer"
    c.model.transformer.halt_max_steps = 2  # ACT on, so the carry and exploration draws are exercised
    c.model.transformer.halt_exploration_prob = 0.5
    for key, value in overrides.items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    config_lib.validate(c)
    return c


def _puzzle_losses(config, mesh, steps=3):
    ds, spec = data_lib.build(config, "train")
    trainer = train.Trainer(config, families.build_family(config, spec.as_dict()), spec.seq_len, mesh)
    it, state, out = iter(ds), trainer.init_state(), []
    for _ in range(steps):
        with jax.set_mesh(mesh):
            state, m = trainer.train_step(state, train.put_batch(trainer, next(it)))
        out.append(float(m["loss"]))
    return np.array(out), state


def _code_losses(config, mesh, steps=3):
    meta = dict(CODE_META, vocab_size=96, seq_len=32)
    trainer = train.Trainer(config, families.build_family(config, meta), 32, mesh)
    rng = np.random.default_rng(0)
    state, out = trainer.init_state(), []
    for _ in range(steps):
        b = config.data.global_batch_size
        seg = np.repeat(np.array([[1] * 20 + [2] * 10 + [0] * 2]), b, 0)
        pos = np.repeat(np.array([list(range(20)) + list(range(10)) + [0, 0]]), b, 0)
        ids = rng.integers(3, 96, (b, 32)).astype(np.int32)
        batch = {"inputs": ids, "targets": ids, "segment_ids": seg.astype(np.int32),
                 "positions": pos.astype(np.int32), "loss_mask": (seg > 0).astype(np.int32)}
        with jax.set_mesh(mesh):
            state, m = trainer.train_step(state, train.put_batch(trainer, batch))
        out.append(float(m["loss"]))
    return np.array(out), state


def test_puzzle_form_same_loss_on_one_and_eight_devices():
    config = _synthetic_config()
    one, s1 = _puzzle_losses(config, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    eight, s8 = _puzzle_losses(config, parallel.make_mesh((8, 1, 1)))
    np.testing.assert_allclose(eight, one, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(jax.device_get(s8.carry.halted), jax.device_get(s1.carry.halted))
    assert s8.carry.inner.z_H.sharding.spec[0] == parallel.BATCH_AXES
    assert one[-1] < one[0]


def test_causal_form_same_loss_on_one_and_eight_devices():
    config = mbpp.get_config("tiny")
    config.model.family = "transformer"
    config.optim.lr_warmup_steps = 1
    config_lib.validate(config)
    one, _ = _code_losses(config, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    eight, state = _code_losses(config, parallel.make_mesh((2, 2, 2)))
    np.testing.assert_allclose(eight, one, rtol=1e-5, atol=1e-6)
    kernel = state.params["layers"]["layers"][0]["self_attn"]["qkv_proj"]["kernel"][...]
    assert "tensor" in str(kernel.sharding.spec)
    assert np.all(np.isfinite(one))


def _train_losses(workdir) -> dict[int, float]:
    out = {}
    for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "train/loss" in record:
            out[record["step"]] = record["train/loss"]
    return out


def test_resume_is_exact_and_another_familys_checkpoint_is_refused(tmp_path):
    config = _synthetic_config(**{"train.steps": 6, "train.checkpoint_every": 3, "train.log_every": 1,
                                  "train.keep_latest": 3, "train.eval_batches": 1, "train.async_checkpoint": False})
    train.train_and_evaluate(config, str(tmp_path))
    reference = _train_losses(tmp_path)
    assert sorted(reference) == list(range(1, 7))
    # Lose the final checkpoint and the log after step 3: the rerun resumes at 3 (ACT carry, data position, rng
    # and optimiser state restored) and must reproduce steps 4..6 bit for bit.
    import shutil
    shutil.rmtree(tmp_path / "checkpoints" / "6")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("".join(line + "\n" for line in lines
                                                    if json.loads(line).get("step", 0) <= 3))
    train.train_and_evaluate(config, str(tmp_path))
    assert _train_losses(tmp_path) == reference

    hrm = synthetic.get_config("tiny")
    for key in ("steps", "checkpoint_every", "log_every", "keep_latest", "eval_batches", "async_checkpoint"):
        hrm.train[key] = config.train[key]
    _, spec = data_lib.build(hrm, "train")
    family = families.build_family(hrm, spec.as_dict())
    manager = ckpt_lib.CheckpointManager.for_run(str(tmp_path), hrm)
    trainer = train.Trainer(hrm, family, spec.seq_len, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    ds, _ = data_lib.build(hrm, "train")
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match="model_family: checkpoint 'transformer' vs "
                                                                   "this run 'hrm'"):
        resume.restore_or_init(manager, trainer, iter(ds), ckpt_lib.run_fingerprint(hrm, family, spec.as_dict()))
    manager.close()
