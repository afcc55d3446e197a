"""HRM-Text in JAX equals transformers' HrmTextForCausalLM (5.23.0, fp32, CPU) on tiny random models.

Per case, one jitted `jax.value_and_grad` over the `nnx.split` parameter state gives logits, loss and gradients;
transformers gives the same from one train-mode forward/backward (dropout is 0). Measured:
  logits  max |jax - hf| over real (non-padding) positions              <= 1e-5
  loss    |jax - hf| / |hf|                                              <= 1e-6
  grads   per tensor, max |g_jax - g_hf| / max |g_hf| (fused on-disk names; split HF grads concatenated)  <= 1e-4
The loss is transformers' ForCausalLMLoss built from hrm_jax.losses (shift by one, ignore -100, mean over kept).
"""

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

from hrm_jax import hf, losses  # noqa: E402
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig  # noqa: E402

torch.set_num_threads(2)

LOGITS_ABS, LOSS_REL, GRAD_REL = 1e-5, 1e-6, 1e-4
MEASURED: dict[str, tuple[float, float, float]] = {}


def causal_lm_loss(logits_BSV, labels_BS):
    """transformers' ForCausalLMLoss: labels shifted left by one, -100 ignored, mean over kept tokens, fp32."""
    shifted = losses.causal_lm_labels(labels_BS)
    return jnp.sum(losses.softmax_cross_entropy(logits_BSV, shifted)) / jnp.sum(shifted != losses.IGNORE_LABEL_ID)


BASE = dict(vocab_size=96, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
            head_dim=16, max_position_embeddings=64, pad_token_id=1)

# (id, HF config overrides, seq len, inputs: None | "prefix" | "noncontig" | "padded" | "pad_tokens", attn impl)
CASES = [
    ("causal-h2l2-bp2", dict(prefix_lm=False, H_cycles=2, L_cycles=2, L_bp_cycles=[2], hidden_size=64, head_dim=8),
     7, None, "eager"),
    ("prefix-h2l3-bp03", dict(H_cycles=2, L_cycles=3, L_bp_cycles=[0, 3]), 13, "prefix", "eager"),
    ("prefix-noncontig-h2l3-bp11", dict(H_cycles=2, L_cycles=3, L_bp_cycles=[1, 1]), 7, "noncontig", "eager"),
    ("prefix-padded-h2l3-bp30", dict(H_cycles=2, L_cycles=3, L_bp_cycles=[3, 0]), 13, "padded", "eager"),
    ("tied-h3l1-bp5-lps1", dict(H_cycles=3, L_cycles=1, L_bp_cycles=[5], num_hidden_layers=1,
                                 tie_word_embeddings=True), 7, "pad_tokens", "eager"),
    ("sdpa-prefix-h2l2-bp2", dict(H_cycles=2, L_cycles=2, L_bp_cycles=[2]), 13, "prefix", "sdpa"),
]


def make_inputs(kind, seq, vocab, pad, rng):
    ids = rng.integers(3, vocab, size=(2, seq))
    tt = attn = pos = None
    labels = ids.copy()
    labels[:, :2] = -100  # prompt positions excluded from the loss
    if kind == "prefix":
        tt = np.zeros_like(ids)
        tt[0, :4], tt[1, :seq // 2] = 1, 1
    elif kind == "noncontig":
        tt = np.zeros_like(ids)
        tt[0, [0, 2, 5]], tt[1, [1, 3]] = 1, 1
    elif kind == "padded":  # left padding in row 0, a prefix in both rows
        attn = np.ones_like(ids)
        attn[0, :3] = 0
        ids[0, :3] = pad
        # No loss at padding queries: position 2 would predict the first real token through a fully masked
        # attention row, whose gradient transformers' eager additive mask passes through (a padding artefact).
        labels[0, :4] = -100
        tt = np.zeros_like(ids)
        tt[0, 3:6], tt[1, :4] = 1, 1
        pos = np.clip(np.cumsum(attn, axis=1) - 1, 0, None)
    elif kind == "pad_tokens":  # the pad id inside real text: its embedding row gets no lookup gradient
        ids[:, 3] = pad
    return ids, tt, attn, pos, labels


def fuse_hf_grads(hf_model, config):
    named = {n: p.grad.detach().numpy().astype(np.float32) for n, p in hf_model.named_parameters()
             if p.grad is not None}
    out = {}
    for spec in hf.tensor_specs(config):
        if spec.name == "model.z_L_init":
            continue
        if spec.name in named:
            out[spec.name] = named[spec.name]
        else:
            out[spec.name] = np.concatenate([named[n] for n in spec.split_names], axis=0)
    return out


@pytest.mark.parametrize("case_id,overrides,seq,kind,impl", CASES, ids=[c[0] for c in CASES])
def test_logits_loss_grads_equal_transformers(case_id, overrides, seq, kind, impl):
    torch.manual_seed(0)
    hf_config = HFConfig(**{**BASE, **overrides})
    hf_model = HrmTextForCausalLM(hf_config)
    hf_model.config._attn_implementation = impl
    with torch.no_grad():
        hf_model.model.z_L_init.normal_()  # non-zero, so z_L_init bugs show
    hf_model.train()

    config = HrmTextConfig.from_hf_dict(hf_config.to_dict())
    model = nnx.eval_shape(lambda: HrmText(config, rngs=nnx.Rngs(0)))
    hf.load_state_dict(model, hf_model.state_dict())

    ids, tt, attn, pos, labels = make_inputs(kind, seq, config.vocab_size, config.pad_token_id,
                                             np.random.default_rng(len(case_id)))
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    out = hf_model(input_ids=t(ids), token_type_ids=t(tt), attention_mask=t(attn), position_ids=t(pos),
                   labels=t(labels))
    out.loss.backward()
    ref_logits = out.logits.detach().numpy()
    ref_grads = fuse_hf_grads(hf_model, config)
    assert hf_model.model.z_L_init.grad is None

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    j = lambda a: None if a is None else jnp.asarray(a)  # noqa: E731

    def loss_fn(params, rest, ids, tt, attn, pos, labels):
        logits = nnx.merge(graphdef, params, rest)(ids, tt, attn, pos)
        return causal_lm_loss(logits, labels), logits

    with jax.default_matmul_precision("highest"):
        (loss, logits), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
            params, rest, j(ids), j(tt), j(attn), j(pos), j(labels))

    real = np.ones(ids.shape, bool) if attn is None else attn.astype(bool)
    logits_err = float(np.abs(np.asarray(logits) - ref_logits)[real].max())
    loss_rel = abs(float(loss) - out.loss.item()) / abs(out.loss.item())
    jax_grads = hf.state_dict(grads, config)
    assert "model.z_L_init" not in jax_grads and set(jax_grads) == set(ref_grads)
    grad_rel = 0.0
    for name, ref in ref_grads.items():
        scale = np.abs(ref).max()
        assert scale > 0, f"{name}: transformers' gradient is all zero; the case does not exercise it"
        grad_rel = max(grad_rel, float(np.abs(jax_grads[name] - ref).max() / scale))
    if config.pad_token_id is not None and not config.tie_word_embeddings:
        assert np.all(jax_grads["model.embed_tokens.weight"][config.pad_token_id] == 0)
    MEASURED[case_id] = (logits_err, loss_rel, grad_rel)
    print(f"\n{case_id}: logits max abs {logits_err:.2e}, loss rel {loss_rel:.2e}, grad max rel {grad_rel:.2e}")
    assert logits_err <= LOGITS_ABS
    assert loss_rel <= LOSS_REL
    assert grad_rel <= GRAD_REL
