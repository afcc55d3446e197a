"""HrmTextConfig (transformers' config.json pitfalls, presets, parameter counts) and HrmText's own behaviour:
initialisations, gradient routing, the prefix-LM switch, the pad row, bf16. Parity with transformers is in
test_hrm_text_parity.py."""

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402
from transformers import HrmTextConfig as HFConfig  # noqa: E402
from transformers import HrmTextForCausalLM  # noqa: E402

from hrm_jax import hf  # noqa: E402
from hrm_jax.model.hrm import Buffer  # noqa: E402
from hrm_jax.model.hrm_text import PRESETS, HrmText, HrmTextConfig, num_params, preset  # noqa: E402

torch.set_num_threads(2)

TINY = HrmTextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers_per_stack=1,
                     num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=2, pad_token_id=0)

# sapientinc/HRM-Text-1B's original hub config.json (HRM_TEXT_REFERENCE.md section 2), minus auto_map details.
HUB_1B = {
    "architectures": ["HrmTextForCausalLM"], "model_type": "hrm_text", "auto_map": {"AutoConfig": "x"},
    "vocab_size": 65536, "hidden_size": 1536, "intermediate_size": 4096, "num_hidden_layers": 16,
    "num_attention_heads": 12, "num_key_value_heads": 12, "head_dim": 128, "H_cycles": 2, "L_cycles": 3,
    "L_bp_cycles": [0, 3], "embedding_scale": 39.191835884530846, "initializer_range": 0.025515518153991442,
    "prefix_lm": True, "rope_theta": 10000.0, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False, "pad_token_id": 5, "bos_token_id": 6, "eos_token_id": 11,
}


# ----- config ---------------------------------------------------------------------------------------------------
def test_hub_1b_config_is_the_preset():
    assert HrmTextConfig.from_hf_dict(HUB_1B) == preset("hrm-text-1b")


def test_resaved_config_expanded_num_hidden_layers():
    d = {**HUB_1B, "num_hidden_layers": 128, "num_layers_per_stack": 16}
    del d["rope_theta"]
    d["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0}
    assert HrmTextConfig.from_hf_dict(d) == preset("hrm-text-1b")


def test_config_pitfalls():
    base = {"model_type": "hrm_text", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2}
    c = HrmTextConfig.from_hf_dict(base)
    assert c.head_dim == 128  # not hidden / heads
    assert c.num_layers_per_stack == 2 and c.num_hidden_layers == 2 * 2 * 4
    assert c.L_bp_cycles == (2,) and c.embedding_scale == 1 / 0.02
    assert HrmTextConfig.from_hf_dict({**base, "L_bp_steps": [0, 3]}).L_bp_cycles == (0, 3)  # Sapient's exporter
    assert HrmTextConfig.from_hf_dict({**base, "rope_theta": 5e5}).rope_theta == 5e5  # legacy top level
    assert HrmTextConfig.from_hf_dict({**base, "num_key_value_heads": 1}) == c  # ignored: pure MHA
    with pytest.raises(ValueError, match="model_type is 'llama'"):
        HrmTextConfig.from_hf_dict({**base, "model_type": "llama"})
    with pytest.raises(ValueError, match="hidden_act='gelu'"):
        HrmTextConfig.from_hf_dict({**base, "hidden_act": "gelu"})
    with pytest.raises(ValueError, match="rope_type='yarn'"):
        HrmTextConfig.from_hf_dict({**base, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1.0}})
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        HrmTextConfig(hidden_size=30, num_attention_heads=4)


def test_to_hf_dict_round_trips_through_transformers():
    c = TINY.replace(L_bp_cycles=(0, 2), eos_token_id=(2, 3), tie_word_embeddings=True)
    d = c.to_hf_dict()
    assert HrmTextConfig.from_hf_dict(d) == c
    hf_cfg = HFConfig(**{k: v for k, v in d.items() if k not in ("architectures", "transformers_version")})
    assert (hf_cfg.num_hidden_layers, hf_cfg.num_layers_per_stack) == (c.num_hidden_layers, 1)
    assert HrmTextConfig.from_hf_dict(hf_cfg.to_dict()) == c


def test_l_bp_cycles_padding_follows_h_cycles():
    c = TINY.replace(H_cycles=3, L_cycles=3, L_bp_cycles=(2,))
    assert c.L_bp_cycles_padded == (1, 1, 2)
    assert [[c.l_call_keeps_grad(h, l) for l in range(3)] for h in range(3)] == [
        [False, False, True], [False, False, True], [False, True, True]]
    assert TINY.replace(L_bp_cycles=(0, 5, 9)).L_bp_cycles_padded == (0, 5, 9)  # only the first H_cycles used


# ----- presets and counts -----------------------------------------------------------------------------------------
def count_model_params(config):
    model = nnx.eval_shape(lambda: HrmText(config, rngs=nnx.Rngs(0)))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts(name):
    config = preset(name)
    n = num_params(config)
    print(f"\n{name}: {n:,} parameters ({num_params(config, embeddings=False):,} in the blocks)")
    assert count_model_params(config) == n
    if name == "hrm-text-1b":
        assert n + config.hidden_size == 1_182_795_264  # the released count, z_L_init included
    assert config.num_hidden_layers == config.num_layers_per_stack * config.H_cycles * (config.L_cycles + 1)


def test_num_params_matches_transformers():
    for tied in (False, True):
        c = TINY.replace(tie_word_embeddings=tied)
        ref = HrmTextForCausalLM(HFConfig(**c.to_hf_dict()))
        assert num_params(c) + c.hidden_size == sum(p.numel() for p in ref.parameters())


def test_unknown_preset():
    with pytest.raises(KeyError, match="known"):
        preset("code-1b")


# ----- initialisation ---------------------------------------------------------------------------------------------
BIG = TINY.replace(hidden_size=256, intermediate_size=512, num_attention_heads=4, head_dim=64, vocab_size=512,
                   initializer_range=0.05)


def test_transformers_init():
    model = HrmText(BIG, rngs=nnx.Rngs(0))
    tensors = hf.state_dict(model)
    assert isinstance(model.z_L_init, Buffer) and not isinstance(model.z_L_init, nnx.Param)
    assert np.all(tensors["model.z_L_init"] == 0)
    assert np.all(tensors["model.embed_tokens.weight"][0] == 0)  # pad row
    for name, w in tensors.items():
        if name != "model.z_L_init":
            w = w[1:] if "embed" in name else w
            assert abs(w.std() - 0.05) < 0.005, name
            assert np.abs(w).max() > 3.5 * 0.05, name  # plain normal, not truncated


def test_authors_init():
    model = HrmText(BIG, init="authors", rngs=nnx.Rngs(0))
    tensors = hf.state_dict(model)
    z = tensors["model.z_L_init"]
    assert abs(z.std() - 1.0) < 0.2 and np.all(z.astype(jnp.bfloat16).astype(np.float32) == z)
    assert np.all(tensors["model.embed_tokens.weight"][0] == 0)
    for name, w in tensors.items():
        if name == "model.z_L_init":
            continue
        std = 1 / math.sqrt(512 if "down_proj" in name else 256)
        assert abs(w.std() - std) < 0.1 * std, name
        assert np.abs(w).max() <= 3 * 1.0148 * std, name  # fmod(3) wraps, never beyond 3 sigma
    with pytest.raises(ValueError, match="init must be"):
        HrmText(TINY, init="xavier", rngs=nnx.Rngs(0))


# ----- behaviour --------------------------------------------------------------------------------------------------
IDS = jnp.asarray(np.random.default_rng(0).integers(1, 64, size=(2, 7)))


def grads_of(model, ids=IDS):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    weights = jax.random.normal(jax.random.key(0), (*ids.shape, model.config.vocab_size))

    def loss(params):  # a random linear functional of the logits: every logit gets a non-zero cotangent
        return jnp.sum(nnx.merge(graphdef, params, rest)(ids).astype(jnp.float32) * weights)

    return hf.state_dict(jax.jit(jax.grad(loss))(params), model.config)


def test_l_bp_cycles_zero_stops_all_l_gradient():
    c = TINY.replace(H_cycles=1, L_cycles=2)
    g0 = grads_of(HrmText(c.replace(L_bp_cycles=(0,)), rngs=nnx.Rngs(0)))
    g1 = grads_of(HrmText(c.replace(L_bp_cycles=(1,)), rngs=nnx.Rngs(0)))
    for name in g0:
        if ".L_module." in name:
            assert np.all(g0[name] == 0) and np.any(g1[name] != 0), name
        if ".H_module." in name:
            assert np.any(g0[name] != 0), name


def test_pad_row_gets_no_gradient():
    ids = IDS.at[:, 2].set(TINY.pad_token_id)
    g = grads_of(HrmText(TINY, rngs=nnx.Rngs(0)), ids)["model.embed_tokens.weight"]
    assert np.all(g[TINY.pad_token_id] == 0) and np.any(g[3] != 0)
    # Tied: the lm_head use of the row still trains it, as with transformers' padding_idx.
    g_tied = grads_of(HrmText(TINY.replace(tie_word_embeddings=True), rngs=nnx.Rngs(0)), ids)
    assert np.any(g_tied["model.embed_tokens.weight"][TINY.pad_token_id] != 0)


def test_token_types_only_matter_with_prefix_lm():
    tt = jnp.zeros_like(IDS).at[:, :4].set(1)
    causal = HrmText(TINY.replace(prefix_lm=False), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(causal(IDS, tt), causal(IDS))
    prefix = HrmText(TINY, rngs=nnx.Rngs(0))
    assert np.abs(prefix(IDS, tt) - prefix(IDS)).max() > 1e-3
    np.testing.assert_array_equal(prefix(IDS, jnp.zeros_like(IDS)), prefix(IDS))  # all-zero types = none


def test_transformers_keyword_names_are_accepted():
    model = HrmText(TINY, rngs=nnx.Rngs(0))
    tt = jnp.zeros_like(IDS).at[:, :4].set(1)
    mask = jnp.ones_like(IDS).at[0, 2:4].set(0)
    pos = jnp.broadcast_to(jnp.arange(IDS.shape[1]) + 3, IDS.shape)
    ours = model(IDS, tt, mask, pos)
    theirs = model(input_ids=IDS, attention_mask=mask, token_type_ids=tt, position_ids=pos)
    np.testing.assert_array_equal(theirs, ours)
    assert np.abs(model(input_ids=IDS, attention_mask=mask) - model(IDS)).max() > 1e-4  # the mask is used
    with pytest.raises(TypeError, match="both input_ids_BS and input_ids"):
        model(IDS, input_ids=IDS)


def test_bf16_close_to_transformers_bf16():
    torch.manual_seed(0)
    ref = HrmTextForCausalLM(HFConfig(**TINY.replace(hidden_size=64, num_attention_heads=4, head_dim=16)
                                      .to_hf_dict())).eval()
    with torch.no_grad():
        ref.model.z_L_init.normal_()
    ref = ref.to(torch.bfloat16)
    ids = np.array(IDS)
    with torch.no_grad():
        want = ref(input_ids=torch.from_numpy(ids)).logits.float().numpy()
    config = HrmTextConfig.from_hf_dict(ref.config.to_dict())
    model = hf.load_state_dict(nnx.eval_shape(lambda: HrmText(config, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))),
                               ref.state_dict())
    got = model(jnp.asarray(ids))
    assert got.dtype == jnp.bfloat16
    assert np.abs(np.asarray(got, np.float32) - want).max() <= 5e-3  # HF bf16 vs fp32 differs by about 5e-3
