"""The original's state_dict <-> our params: names, layouts, round trip, errors."""

import jax
import numpy as np
import pytest
from flax import nnx

from hrm_jax import interop
from hrm_jax.model.hrm import HRM, HRMConfig

CFG = HRMConfig(vocab_size=10, seq_len=6, puzzle_emb_ndim=24, num_puzzle_identifiers=3, hidden_size=16, num_heads=2,
                H_layers=2, L_layers=1, pos_encodings="learned", forward_dtype="float32")


def _random_state_dict(cfg, prefix="_orig_mod.model.inner."):
    sd = interop.params_to_torch_state_dict(nnx.to_pure_dict(nnx.state(HRM(cfg, rngs=nnx.Rngs(0)))), cfg, prefix)
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in sd.items()}


def test_state_dict_names_and_shapes_are_the_originals():
    sd = interop.params_to_torch_state_dict(nnx.to_pure_dict(nnx.state(HRM(CFG, rngs=nnx.Rngs(0)))), CFG)
    shapes = {k: v.shape for k, v in sd.items()}
    p = "model.inner."
    assert shapes[p + "embed_tokens.embedding_weight"] == (10, 16)
    assert shapes[p + "embed_pos.embedding_weight"] == (8, 16)  # S + P, P = ceil(24 / 16)
    assert shapes[p + "lm_head.weight"] == (10, 16)
    assert shapes[p + "q_head.weight"] == (2, 16) and shapes[p + "q_head.bias"] == (2,)
    assert shapes[p + "H_level.layers.1.self_attn.qkv_proj.weight"] == (48, 16)
    assert shapes[p + "L_level.layers.0.self_attn.o_proj.weight"] == (16, 16)
    assert shapes[p + "L_level.layers.0.mlp.gate_up_proj.weight"] == (512, 16)
    assert shapes[p + "L_level.layers.0.mlp.down_proj.weight"] == (16, 256)
    assert shapes[p + "H_init"] == (16,) and shapes[p + "puzzle_emb.weights"] == (3, 24)
    assert len(sd) == 6 + 2 + 3 * 4  # embeddings, heads, inits, puzzle table + 4 tensors per block


def test_fused_layouts_keep_head_and_gate_order():
    sd = _random_state_dict(CFG, prefix="")
    params = interop.torch_state_dict_to_params(sd, CFG)
    qkv_t = sd["H_level.layers.0.self_attn.qkv_proj.weight"]  # (3*N*H, D): rows q heads, k heads, v heads
    kernel = params["H_level"]["layers"][0]["self_attn"]["qkv_proj"]["kernel"]  # (D, 3, N, H)
    np.testing.assert_array_equal(kernel[:, 1, 1, :], qkv_t[16 + 8:16 + 16].T)  # k, head 1
    gu_t = sd["L_level.layers.0.mlp.gate_up_proj.weight"]
    gu = params["L_level"]["layers"][0]["mlp"]["gate_up_proj"]["kernel"]  # (D, 2, I): gate first (torch chunk)
    np.testing.assert_array_equal(gu[:, 0], gu_t[:256].T)


@pytest.mark.parametrize("prefix", ["", "inner.", "model.inner.", "_orig_mod.model.inner."])
def test_round_trip_through_the_model_is_exact(prefix):
    sd = _random_state_dict(CFG, prefix)
    model = HRM(CFG, rngs=nnx.Rngs(1))
    interop.load_torch_state_dict(model, sd)
    back = interop.params_to_torch_state_dict(nnx.to_pure_dict(nnx.state(model)), CFG, prefix)
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k], err_msg=k)


def test_bf16_buffers_stay_bf16_after_loading():
    cfg = CFG.replace(forward_dtype="bfloat16")
    model = HRM(cfg, rngs=nnx.Rngs(1))
    interop.load_torch_state_dict(model, _random_state_dict(cfg))
    assert model.H_init[...].dtype == jax.numpy.bfloat16
    assert model.lm_head.kernel[...].dtype == jax.numpy.float32


def test_errors_name_the_tensor():
    sd = _random_state_dict(CFG, prefix="")
    missing = dict(sd)
    missing.pop("q_head.bias")
    with pytest.raises(KeyError, match="q_head.bias"):
        interop.torch_state_dict_to_params(missing, CFG)
    with pytest.raises(KeyError, match="rotary_emb.cos_cached"):
        interop.torch_state_dict_to_params({**sd, "rotary_emb.cos_cached": np.zeros((7, 8))}, CFG)
    bad = dict(sd, **{"lm_head.weight": np.zeros((11, 16), np.float32)})
    with pytest.raises(ValueError, match=r"lm_head.weight: shape \(11, 16\).*expected \(10, 16\)"):
        interop.torch_state_dict_to_params(bad, CFG)


def test_bf16_state_dict_is_torch_loadable_and_exact():
    """H_init / L_init are bf16 buffers in bf16 configs; ml_dtypes bfloat16 arrays are rejected by torch.from_numpy,
    so the state_dict carries them as float32 (exact: every bf16 value is a float32 value)."""
    torch = pytest.importorskip("torch")
    cfg = CFG.replace(forward_dtype="bfloat16")
    model = HRM(cfg, rngs=nnx.Rngs(1))
    sd = interop.params_to_torch_state_dict(nnx.to_pure_dict(nnx.state(model)), cfg, prefix="")
    tensors = {k: torch.from_numpy(v) for k, v in sd.items()}  # raised TypeError for bfloat16 before
    np.testing.assert_array_equal(sd["H_init"], np.asarray(model.H_init[...], np.float32))
    assert tensors["H_init"].dtype == torch.float32 and tensors["lm_head.weight"].dtype == torch.float32
    back = HRM(cfg, rngs=nnx.Rngs(2))
    interop.load_torch_state_dict(back, {k: t.numpy() for k, t in tensors.items()})
    assert back.H_init[...].dtype == jax.numpy.bfloat16
    np.testing.assert_array_equal(np.asarray(back.L_init[...], np.float32), np.asarray(model.L_init[...], np.float32))
