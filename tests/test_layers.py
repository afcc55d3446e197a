"""The shared layers: init statistics, norms, RoPE, attention masking, SwiGLU width, dtypes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model import layers


def test_trunc_normal_init_has_the_requested_std_and_bounds():
    std = 1 / math.sqrt(512)
    x = np.asarray(layers.trunc_normal_init(std)(jax.random.key(0), (512, 1536)))
    assert abs(x.std() - std) / std < 0.01  # std-corrected (plain truncated_normal would give 0.88 std)
    assert np.abs(x).max() <= 2 * std / layers.TRUNCATED_NORMAL_STD_AT_2 + 1e-7
    assert np.all(layers.trunc_normal_init(0.0)(jax.random.key(0), (3,)) == 0)


def test_rms_norm_is_parameter_free_fp32_and_keeps_dtype():
    x = jax.random.normal(jax.random.key(0), (2, 5, 16)).astype(jnp.bfloat16)
    y = layers.rms_norm(x, 1e-5)
    assert y.dtype == jnp.bfloat16
    xf = np.asarray(x, np.float32)
    ref = xf / np.sqrt((xf ** 2).mean(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, rtol=1e-2, atol=1e-2)


def test_rope_is_half_split_and_preserves_norm():
    cos, sin = layers.rope_cos_sin(jnp.arange(7), 8, 10000.0)
    assert cos.shape == (7, 8) and cos.dtype == jnp.float32
    np.testing.assert_allclose(cos[:, :4], cos[:, 4:])  # cat(freqs, freqs): half-split, not interleaved
    x = jax.random.normal(jax.random.key(1), (2, 7, 3, 8))
    y = layers.apply_rope(x, cos, sin, in_fp32=True)
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), jnp.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(y[:, 0], x[:, 0], atol=1e-6)  # position 0 is the identity
    # The rotation pairs dim i with dim i + H/2.
    x1 = jnp.zeros((1, 2, 1, 8)).at[0, 1, 0, 0].set(1.0)
    y1 = layers.apply_rope(x1, cos[:2], sin[:2], in_fp32=True)
    assert np.count_nonzero(np.abs(np.asarray(y1[0, 1, 0])) > 1e-6) == 2
    assert abs(float(y1[0, 1, 0, 4]) - math.sin(1.0)) < 1e-6


def test_swiglu_width_matches_the_original():
    assert layers.swiglu_intermediate_size(512, 4) == 1536
    assert layers.swiglu_intermediate_size(64, 4) == 256
    assert layers.swiglu_intermediate_size(768, 4) == 2048


def test_attention_mask_causal_segments_and_prefix():
    idx = jnp.arange(4)[None]
    seg = jnp.array([[1, 1, 2, 0]])
    m = layers.attention_mask(causal=True, q_index=idx, kv_index=idx, q_segment_ids=seg, kv_segment_ids=seg)[0, 0]
    expected = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(m, expected)
    prefix = jnp.array([[1, 1, 0, 0]])
    m = layers.attention_mask(causal=True, q_index=idx, kv_index=idx, q_prefix=prefix, kv_prefix=prefix)[0, 0]
    assert bool(m[0, 1]) and not bool(m[1, 2]) and bool(m[3, 0])
    assert layers.attention_mask(causal=False) is None


def test_linear_params_are_fp32_and_cast_at_use():
    lin = layers.Linear(8, (2, 4), axes=("embed", None, "mlp"), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert lin.kernel[...].dtype == jnp.float32 and lin.kernel[...].shape == (8, 2, 4)
    y = lin(jnp.ones((3, 8), jnp.float32))
    assert y.dtype == jnp.bfloat16 and y.shape == (3, 2, 4)
    assert nnx.get_partition_spec(nnx.state(lin))["kernel"].get_value() == jax.sharding.PartitionSpec("embed", None, "mlp")


@pytest.mark.parametrize("pre_norm,gated", [(False, False), (True, True)])
def test_block_matches_a_plain_numpy_reference(pre_norm, gated):
    d, n, h, inter = 16, 2, 8, 32
    blk = layers.Block(d, n, h, inter, eps=1e-5, pre_norm=pre_norm, gated_attention=gated, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.normal(jax.random.key(2), (2, 5, d)))
    cos, sin = layers.rope_cos_sin(jnp.arange(5), h, 10000.0)
    out = np.asarray(blk(jnp.asarray(x), cos, sin))

    def rms(v):
        return v / np.sqrt((v ** 2).mean(-1, keepdims=True) + 1e-5)

    def rot(v):
        return np.concatenate([-v[..., h // 2:], v[..., :h // 2]], -1)

    wqkv = np.asarray(blk.self_attn.qkv_proj.kernel[...])
    wo = np.asarray(blk.self_attn.o_proj.kernel[...])
    wgu = np.asarray(blk.mlp.gate_up_proj.kernel[...])
    wd = np.asarray(blk.mlp.down_proj.kernel[...])
    c, s = np.asarray(cos)[:, None], np.asarray(sin)[:, None]

    def attn(a):
        p = np.einsum("bsd,dpnh->bspnh", a, wqkv)
        parts = [p[:, :, i] for i in range(p.shape[2])]
        g = parts.pop(0) if gated else None
        q, k, v = parts
        q, k = q * c + rot(q) * s, k * c + rot(k) * s
        sc = np.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(h)
        pr = np.exp(sc - sc.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        o = np.einsum("bnqk,bknh->bqnh", pr, v)
        if gated:
            o = o / (1 + np.exp(-g)) * 1.0
        return o.reshape(2, 5, n * h) @ wo

    def mlp(a):
        gu = np.einsum("bsd,dki->bski", a, wgu)
        gate, up = gu[:, :, 0], gu[:, :, 1]
        return (gate / (1 + np.exp(-gate)) * up) @ wd

    if pre_norm:
        y = x + attn(rms(x))
        ref = y + mlp(rms(y))
    else:
        y = rms(x + attn(x))
        ref = rms(y + mlp(y))
    np.testing.assert_allclose(out, ref, atol=2e-5, rtol=2e-5)
