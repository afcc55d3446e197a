"""hrm_jax.hf: Hugging Face HRM-Text folders in (from_pretrained) and out (save_pretrained), checked against
transformers 5.23.0 itself: folders it writes load with equal logits, folders we write load in it with equal
logits, round trips are bit-exact, and broken folders raise a CheckpointError naming the problem."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402
from transformers import AutoModelForCausalLM, GenerationConfig  # noqa: E402
from transformers import HrmTextConfig as HFConfig  # noqa: E402
from transformers import HrmTextForCausalLM  # noqa: E402

from hrm_jax import hf  # noqa: E402
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig  # noqa: E402

torch.set_num_threads(2)

TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
            head_dim=8, H_cycles=2, L_cycles=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2)
IDS = np.random.default_rng(0).integers(3, 64, size=(2, 9))
TT = np.zeros_like(IDS)
TT[:, :4] = 1


def hf_model(**overrides) -> HrmTextForCausalLM:
    torch.manual_seed(0)
    model = HrmTextForCausalLM(HFConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():
        model.model.z_L_init.normal_()
    return model


def hf_logits(model) -> np.ndarray:
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(IDS), token_type_ids=torch.from_numpy(TT)).logits
    return out.float().numpy()


def jax_logits(model: HrmText) -> np.ndarray:
    return np.asarray(model(jnp.asarray(IDS), jnp.asarray(TT)), np.float32)


def jax_model(seed=1, **overrides) -> HrmText:
    """A fresh JAX model with a random z_L_init (transformers' init leaves it zero)."""
    config = HrmTextConfig.from_hf_dict({**TINY, **overrides})
    model = HrmText(config, rngs=nnx.Rngs(seed))
    model.z_L_init[...] = jnp.asarray(np.random.default_rng(seed).normal(size=config.hidden_size), jnp.float32)
    return model


def params_equal(a: HrmText, b: HrmText):
    sa, sb = hf.state_dict(a), hf.state_dict(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


# ----- transformers -> hrm_jax ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_loads_folder_written_by_transformers(tmp_path, dtype):
    hf_model().to(dtype).save_pretrained(tmp_path)
    ref = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()  # same (rounded) weights
    model = hf.from_pretrained(tmp_path)
    assert model.config == HrmTextConfig.from_hf_dict(TINY)
    assert np.abs(jax_logits(model) - hf_logits(ref)).max() <= 1e-5


def test_loads_sharded_folder(tmp_path):
    ref = hf_model()
    ref.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / hf.SAFETENSORS_INDEX).is_file() and not (tmp_path / hf.SAFETENSORS_FILE).exists()
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    assert np.abs(jax_logits(hf.from_pretrained(tmp_path)) - hf_logits(ref)).max() <= 1e-5


def test_loads_split_tensor_names(tmp_path):
    """A folder with transformers' in-memory names (self_attn.q_proj, mlp.gate_proj, ...) instead of fused ones."""
    ref = hf_model()
    ref.save_pretrained(tmp_path)
    split = {k: v.numpy() for k, v in ref.state_dict().items()}
    assert any(".self_attn.q_proj." in k for k in split) and not any("gqkv" in k for k in split)
    save_file(split, str(tmp_path / hf.SAFETENSORS_FILE), metadata={"format": "pt"})
    assert np.abs(jax_logits(hf.from_pretrained(tmp_path)) - hf_logits(ref)).max() <= 1e-5


def test_loads_tied_folder(tmp_path):
    ref = hf_model(tie_word_embeddings=True)
    ref.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / hf.SAFETENSORS_FILE), "np") as f:
        assert "lm_head.weight" not in f.keys()
    model = hf.from_pretrained(tmp_path)
    assert model.lm_head is None
    assert np.abs(jax_logits(model) - hf_logits(ref)).max() <= 1e-5


# ----- hrm_jax -> transformers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_save_pretrained_loads_in_transformers(tmp_path, dtype, tied):
    model = jax_model(tie_word_embeddings=tied)
    hf.save_pretrained(model, tmp_path, dtype=dtype)
    ref, info = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32, output_loading_info=True)
    assert type(ref) is HrmTextForCausalLM
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys
    ours = hf.from_pretrained(tmp_path)  # the weights as written (bf16-rounded for bf16)
    assert np.abs(jax_logits(ours) - hf_logits(ref.eval())).max() <= 1e-5
    # transformers re-saving our folder writes the same config.json (key for key) and tensor names.
    ref.to(torch.bfloat16 if dtype == jnp.bfloat16 else torch.float32).save_pretrained(tmp_path / "resaved")
    ours_cfg = json.loads((tmp_path / "config.json").read_text())
    assert json.loads((tmp_path / "resaved" / "config.json").read_text()) == ours_cfg
    assert set(load_file(tmp_path / "resaved" / hf.SAFETENSORS_FILE)) == set(load_file(tmp_path / hf.SAFETENSORS_FILE))


def test_save_pretrained_file_format(tmp_path):
    hf.save_pretrained(jax_model(), tmp_path, dtype=jnp.bfloat16)
    with safe_open(str(tmp_path / hf.SAFETENSORS_FILE), "np") as f:
        assert f.metadata() == {"format": "pt"}
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    assert shapes["model.L_module.layers.1.attn.gqkv_proj.weight"] == (4 * 2 * 8, 32)
    assert shapes["model.H_module.layers.0.mlp.gate_up_proj.weight"] == (2 * 48, 32)
    assert shapes["model.z_L_init"] == (32,) and len(shapes) == 3 + 2 * 2 * 4
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["dtype"] == "bfloat16" and cfg["num_hidden_layers"] == 2 * 2 * 3 and cfg["num_layers_per_stack"] == 2
    assert cfg["model_type"] == "hrm_text" and cfg["architectures"] == ["HrmTextForCausalLM"]
    gen = GenerationConfig.from_pretrained(tmp_path)
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == (1, 2, 0)


def test_save_pretrained_replaces_stale_shards(tmp_path):
    hf_model().save_pretrained(tmp_path, max_shard_size="20KB")
    hf.save_pretrained(jax_model(), tmp_path)
    assert not (tmp_path / hf.SAFETENSORS_INDEX).exists() and not list(tmp_path.glob("model-*-of-*"))


# ----- round trips ------------------------------------------------------------------------------------------------
def test_roundtrip_fp32_is_exact(tmp_path):
    model = jax_model()
    hf.save_pretrained(model, tmp_path / "a")
    params_equal(hf.from_pretrained(tmp_path / "a"), model)


def test_roundtrip_bf16_is_exact_after_rounding(tmp_path):
    model = jax_model()
    hf.save_pretrained(model, tmp_path / "a", dtype=jnp.bfloat16)
    loaded = hf.from_pretrained(tmp_path / "a")
    for name, value in hf.state_dict(loaded).items():
        rounded = hf.state_dict(model)[name].astype(ml_dtypes.bfloat16).astype(np.float32)
        np.testing.assert_array_equal(value, rounded, err_msg=name)
    hf.save_pretrained(loaded, tmp_path / "b", dtype=jnp.bfloat16)  # bf16 -> JAX -> bf16: identical bytes
    assert (tmp_path / "a" / hf.SAFETENSORS_FILE).read_bytes() == (tmp_path / "b" / hf.SAFETENSORS_FILE).read_bytes()


def test_load_state_dict_from_transformers_module():
    ref = hf_model()
    config = HrmTextConfig.from_hf_dict(TINY)
    model = hf.load_state_dict(nnx.eval_shape(lambda: HrmText(config, rngs=nnx.Rngs(0))), ref.state_dict())
    assert np.abs(jax_logits(model) - hf_logits(ref)).max() <= 1e-5


# ----- errors -----------------------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    hf.save_pretrained(jax_model(), tmp_path)
    return tmp_path


def edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def edit_tensors(path, fn):
    tensors = load_file(path / hf.SAFETENSORS_FILE)
    fn(tensors)
    save_file(tensors, str(path / hf.SAFETENSORS_FILE), metadata={"format": "pt"})


def test_error_other_model_type(saved):
    edit_config(saved, model_type="llama")
    with pytest.raises(hf.CheckpointError, match=r"config\.json: model_type is 'llama', expected 'hrm_text'"):
        hf.from_pretrained(saved)


def test_error_missing_tensor(saved):
    name = "model.H_module.layers.1.mlp.down_proj.weight"
    edit_tensors(saved, lambda t: t.pop(name))
    with pytest.raises(hf.CheckpointError, match=r"1 tensor\(s\) missing.*" + name.replace(".", r"\.") +
                       r" \(32, 48\)"):
        hf.from_pretrained(saved)


def test_error_extra_tensor(saved):
    edit_tensors(saved, lambda t: t.update({"model.H_module.layers.2.mlp.down_proj.weight": np.zeros((32, 48),
                                                                                                   np.float32)}))
    with pytest.raises(hf.CheckpointError, match=r"unexpected tensor\(s\).*model\.H_module\.layers\.2\.mlp\.down_proj"):
        hf.from_pretrained(saved)


def test_error_shape_disagrees_with_config(saved):
    edit_config(saved, intermediate_size=64)
    with pytest.raises(hf.CheckpointError, match=r"model\.safetensors: tensor model\.L_module\.layers\.0\.mlp\."
                       r"gate_up_proj\.weight has shape \(96, 32\), expected \(128, 32\)"):
        hf.from_pretrained(saved)


def test_error_truncated_file(saved):
    file = saved / hf.SAFETENSORS_FILE
    file.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(hf.CheckpointError, match=r"model\.safetensors: not a readable safetensors file \(truncated"):
        hf.from_pretrained(saved)


def test_error_no_weights_or_config(tmp_path):
    with pytest.raises(hf.CheckpointError, match="no config.json"):
        hf.from_pretrained(tmp_path)
    edit = tmp_path / "config.json"
    edit.write_text(json.dumps(jax_model().config.to_hf_dict()))
    with pytest.raises(hf.CheckpointError, match=r"no model\.safetensors or model\.safetensors\.index\.json"):
        hf.from_pretrained(tmp_path)


def test_error_missing_shard(tmp_path):
    hf_model().save_pretrained(tmp_path, max_shard_size="20KB")
    next(tmp_path.glob("model-*-of-*.safetensors")).unlink()
    with pytest.raises(hf.CheckpointError, match="lists shard"):
        hf.from_pretrained(tmp_path)


def test_error_unsupported_save_dtype(tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        hf.save_pretrained(jax_model(), tmp_path, dtype=jnp.int8)


def test_bf16_parameters_for_inference_compute_the_same(tmp_path):
    """param_dtype=bf16 halves the loaded size of a bf16 checkpoint and gives bit-identical bf16 logits."""
    hf.save_pretrained(jax_model(), tmp_path, dtype=jnp.bfloat16)
    fp32_params = hf.from_pretrained(tmp_path, dtype=jnp.bfloat16)
    bf16_params = hf.from_pretrained(tmp_path, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    leaves = [v[...] for _, v in nnx.to_flat_state(nnx.state(bf16_params, nnx.Param))]
    assert {x.dtype for x in leaves} == {jnp.dtype(jnp.bfloat16)}
    np.testing.assert_array_equal(jax_logits(bf16_params), jax_logits(fp32_params))
