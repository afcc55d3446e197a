"""`model.hrm_text.loop_cycles`: a cycle's gradient-free L calls as one lax.fori_loop, and consecutive H cycles
of one routing as one differentiated loop, give the unrolled forward and gradients (fp32; with the backprop-depth
warm-up's routing too), the uncached forward is unchanged, and the training program is flat in H_cycles. Cached
generation through the loops: tests/test_generate_loops.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

# The released routing's shape: cycle 0's three L calls are gradient-free (looped), cycle 1's graded.
TINY = HrmTextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers_per_stack=2,
                     num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=3, L_bp_cycles=(0, 3),
                     pad_token_id=0, prefix_lm=False)
# H = 4: transformers pads L_bp_cycles to (1, 1, 0, 3), so cycles 0 and 1 (two free L calls, one graded, the H
# call) run as one loop over cycles, cycle 2's L calls in the gradient-free loop, cycle 3 unrolled.
TINY_H4 = TINY.replace(H_cycles=4)
IDS = jnp.asarray(np.random.default_rng(0).integers(1, 64, (2, 10)), jnp.int32)


def _models(remat=False, cfg=TINY):
    return (HrmText(cfg, remat=remat, rngs=nnx.Rngs(0)),
            HrmText(cfg, loop_cycles=True, remat=remat, rngs=nnx.Rngs(0)))


def _loss_and_grads(model, bp_depth=None):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    seg, pos = jnp.ones_like(IDS), jnp.broadcast_to(jnp.arange(10), IDS.shape)
    weights = jax.random.normal(jax.random.key(1), (2, 10, 64))

    def loss(p):
        m = nnx.merge(graphdef, p, rest)
        return (m.logits(m.segment_hidden_states(IDS, seg, pos, bp_depth=bp_depth)) * weights).sum()

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("remat,cfg,bp_depth", [(False, TINY, None), (True, TINY_H4, None), (False, TINY_H4, 4)])
def test_looped_equals_unrolled_forward_and_gradients(remat, cfg, bp_depth):
    unrolled, looped = _models(remat, cfg)
    depth = None if bp_depth is None else jnp.int32(bp_depth)
    (l1, g1), (l2, g2) = _loss_and_grads(unrolled, depth), _loss_and_grads(looped, depth)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(jax.tree.leaves(g2["L_module"])[0]).sum()) > 0


def test_looped_lowers_to_a_loop():
    _, looped = _models()
    text = jax.jit(lambda ids: looped(ids)).lower(IDS).as_text()
    assert "while" in text or "scan" in text



@pytest.mark.parametrize("cfg", [TINY, TINY_H4])
def test_the_uncached_forward_is_unchanged(cfg):
    unrolled, looped = _models(cfg=cfg)
    np.testing.assert_allclose(looped(IDS), unrolled(IDS), rtol=1e-6, atol=1e-6)


def _gradient_program_size(cfg, **options) -> int:
    """Characters of the lowered gradient of a loss over `HrmText(cfg, **options)`'s logits."""
    model = HrmText(cfg, rngs=nnx.Rngs(0), **options)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    seg, pos = jnp.ones_like(IDS), jnp.broadcast_to(jnp.arange(10), IDS.shape)

    def loss(p):
        return nnx.merge(graphdef, p, rest).segment_logits(IDS, seg, pos).sum()
    return len(jax.jit(jax.grad(loss)).lower(params).as_text())


def test_the_training_program_is_flat_in_H_cycles():
    """Gradient of the loss, lowered: with loop_cycles its size does not grow from 4 to 8 H cycles (the padded
    cycles are one loop body); unrolled it does."""
    def size(loop, h):
        return _gradient_program_size(TINY.replace(H_cycles=h), loop_cycles=loop)

    assert size(False, 8) > 1.5 * size(False, 4)
    assert size(True, 8) == size(True, 4)


def _rms_norm_in_input_dtype(x, eps):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)


@pytest.mark.parametrize("loop,remat", [(False, False), (True, True)])
def test_scanned_layers_are_the_unrolled_computation_in_float64(loop, remat, monkeypatch):
    """`scan_layers`: each stack's blocks as one lax.scan over their stacked weights compute the per-block
    forward and gradients (with the cycle loops and remat too): in float64, RMSNorm included, equal to float64
    rounding (fp32 differs by fusion order, ~1e-6 relative on this loss). The parameters stay per block (the same
    tree, so checkpoints and exports do not change)."""
    from hrm_jax.model import layers  # noqa: PLC0415
    monkeypatch.setattr(layers, "rms_norm", _rms_norm_in_input_dtype)
    cfg = TINY_H4.replace(num_layers_per_stack=3)
    with jax.enable_x64(True):
        runs = []
        for scan in (False, True):
            model = HrmText(cfg, dtype=jnp.float64, loop_cycles=loop and scan, remat=remat, scan_layers=scan,
                            rngs=nnx.Rngs(0))
            nnx.update(model, jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a,
                                           nnx.state(model)))
            runs.append((model, _loss_and_grads(model)))
        (unrolled, (l1, g1)), (scanned, (l2, g2)) = runs
        assert jax.tree.structure(nnx.state(scanned, nnx.Param)) == jax.tree.structure(nnx.state(unrolled, nnx.Param))
        assert jax.tree.leaves(g2)[0].dtype == jnp.float64
        np.testing.assert_allclose(l2, l1, rtol=1e-12)
        scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(g1))
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * scale)


def test_the_training_program_is_flat_in_layers_with_scan_layers():
    def size(scan, lps):
        return _gradient_program_size(TINY.replace(num_layers_per_stack=lps), scan_layers=scan)

    assert size(False, 6) > 1.5 * size(False, 2)
    assert size(True, 6) < 1.2 * size(True, 2)  # only the stacking of the weights grows


def test_the_config_reaches_the_stacks():
    """model.hrm_text.scan_layers / loop_cycles / remat_cycles: from the config through the family to the model."""
    import pathlib  # noqa: PLC0415
    import sys  # noqa: PLC0415
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from configs import mbpp  # noqa: PLC0415
    from hrm_jax import families  # noqa: PLC0415

    c = mbpp.get_config("tiny")
    c.model.hrm_text.scan_layers = c.model.hrm_text.loop_cycles = c.model.hrm_text.remat_cycles = True
    model = families.build_family(c, {"vocab_size": 64, "seq_len": 32}).build(nnx.Rngs(0))
    assert model.L_module.scan_layers and model.H_module.scan_layers and model.loop_cycles and model.remat_cycles
