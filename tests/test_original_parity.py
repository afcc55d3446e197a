"""Parity with the original PyTorch HRM (sapientinc/HRM), given identical weights.

Skipped unless HRM_ORIGINAL_SRC points at a checkout of the original's source (never committed here):
    git -C <mirror> archive HEAD | tar -x -C /path/hrm_original
    HRM_ORIGINAL_SRC=/path/hrm_original python -m pytest tests/test_original_parity.py -v -s
flash_attn is replaced by an SDPA stand-in (HRM_REFERENCE.md 7.1); both sides run fp32.
Checks: logits and q values, loss, every gradient (puzzle table included), halting, steps and data replacement
over 6 training steps with matched exploration draws, and the parameters after AdamATan2 / SignSGD updates.
"""

import os
import sys
import types

import numpy as np
import pytest

SRC = os.environ.get("HRM_ORIGINAL_SRC")
pytestmark = pytest.mark.skipif(not SRC, reason="set HRM_ORIGINAL_SRC to the original HRM source to run parity")

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from hrm_jax import interop, losses, optim  # noqa: E402
from hrm_jax.model import act  # noqa: E402
from hrm_jax.model.hrm import HRM, HRMConfig, PuzzleEmbedding  # noqa: E402

B, S, V, N_IDS = 6, 16, 12, 5
STEPS = 6
LR, WD, PUZZLE_LR, PUZZLE_WD = 1e-3, 0.1, 1e-2, 0.1


def _import_original():
    def flash_attn_func(q, k, v, causal=False, softmax_scale=None, **kw):
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                             is_causal=causal, scale=softmax_scale)
        return o.transpose(1, 2)

    stub = types.ModuleType("flash_attn")
    stub.flash_attn_func = flash_attn_func
    sys.modules["flash_attn"] = stub
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    from models.hrm import hrm_act_v1  # noqa
    from models import losses as orig_losses, sparse_embedding  # noqa
    return hrm_act_v1, orig_losses, sparse_embedding


def _torch_adam_atan2_step(params, state, lr, b1=0.9, b2=0.95, wd=WD):
    """The adam-atan2 package's update rule (its pytest reference), on torch tensors."""
    state["t"] += 1
    t = state["t"]
    for name, p in params:
        if p.grad is None:
            continue
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        g = p.grad
        with torch.no_grad():
            p.mul_(1 - lr * wd)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.add_(torch.atan2(m, v.sqrt() / (1 - b2 ** t) ** 0.5), alpha=-lr / (1 - b1 ** t))


CONFIGS = {
    "rope_puzzle512": dict(puzzle_emb_ndim=64, pos_encodings="rope"),
    "learned_pad": dict(puzzle_emb_ndim=100, pos_encodings="learned"),
    "no_puzzle": dict(puzzle_emb_ndim=0, pos_encodings="rope"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("loss_type", ["stablemax_cross_entropy", "softmax_cross_entropy"])
def test_train_steps_match_original(name, loss_type):
    hrm_act_v1, orig_losses, sparse_embedding = _import_original()
    torch.manual_seed(0)
    extra = CONFIGS[name]
    cfg_dict = dict(batch_size=B, seq_len=S, num_puzzle_identifiers=N_IDS, vocab_size=V, H_cycles=2, L_cycles=2,
                    H_layers=2, L_layers=2, hidden_size=64, expansion=4, num_heads=4, halt_max_steps=4,
                    halt_exploration_prob=0.5, forward_dtype="float32", **extra)
    tmodel = hrm_act_v1.HierarchicalReasoningModel_ACTV1(cfg_dict)
    if loss_type == "softmax_cross_entropy":  # the original's .view fails on fp32 sliced logits (its bug)
        orig_losses.softmax_cross_entropy = lambda logits, labels, ignore_index=-100: torch.nn.functional.cross_entropy(
            logits.to(torch.float32).reshape(-1, logits.shape[-1]), labels.to(torch.long).reshape(-1),
            ignore_index=ignore_index, reduction="none").reshape(labels.shape)
    thead = orig_losses.ACTLossHead(tmodel, loss_type)
    thead.train()
    with torch.no_grad():  # non-trivial q head and puzzle table, so halting and the table's grads are exercised
        tmodel.inner.q_head.weight.normal_(0, 0.05)
        tmodel.inner.q_head.bias.copy_(torch.tensor([0.0, 0.1]))
        if extra["puzzle_emb_ndim"]:
            tmodel.inner.puzzle_emb.weights.normal_(0, 0.5)

    cfg = HRMConfig(**{k: v for k, v in cfg_dict.items() if k != "batch_size"})
    jmodel = HRM(cfg, rngs=nnx.Rngs(1))
    sd = {interop.strip_prefix(k): v.detach().float().numpy() for k, v in tmodel.state_dict().items()}
    interop.load_torch_state_dict(jmodel, sd)
    graphdef, params, table, rest = nnx.split(jmodel, nnx.Param, PuzzleEmbedding, ...)

    adam = optim.adam_atan2(LR, weight_decay=WD)
    sign = optim.sparse_sign_sgd(PUZZLE_LR, PUZZLE_WD)
    adam_state, sign_state = adam.init(params), sign.init(table)
    torch_adam_state = {"t": 0}
    torch_sign = (sparse_embedding.CastedSparseEmbeddingSignSGD_Distributed(
        tmodel.inner.puzzle_emb.buffers(), world_size=1, lr=PUZZLE_LR, weight_decay=PUZZLE_WD)
        if extra["puzzle_emb_ndim"] else None)

    def loss_fn(params, table, carry, batch, draws):
        model = nnx.merge(graphdef, params, table, rest)
        carry, outputs = act.act_step(model, carry, batch, training=True, draws=draws)
        total, metrics = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, loss_type)
        return total / B, (carry, outputs, metrics)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    rng = np.random.default_rng(0)
    tcarry = jcarry = None
    worst = dict(logits=0.0, q=0.0, loss=0.0, grad=0.0, params=0.0)
    for step in range(STEPS):
        inputs = rng.integers(0, V, (B, S))
        labels = np.where(rng.random((B, S)) < 0.2, -100, rng.integers(0, V, (B, S)))
        labels[0] = -100  # a sequence without labels
        ids = rng.integers(0, N_IDS, (B,))
        tb = {"inputs": torch.from_numpy(inputs).int(), "labels": torch.from_numpy(labels).int(),
              "puzzle_identifiers": torch.from_numpy(ids).int()}
        jb = {"inputs": jnp.asarray(inputs, jnp.int32), "labels": jnp.asarray(labels, jnp.int32),
              "puzzle_identifiers": jnp.asarray(ids, jnp.int32)}
        draws = act.ExplorationDraws(uniform=jnp.asarray(rng.random(B), jnp.float32),
                                     min_steps=jnp.asarray(rng.integers(2, cfg.halt_max_steps + 1, B), jnp.int32))
        if tcarry is None:
            tcarry = thead.initial_carry(tb)
            jcarry = act.initial_carry(jmodel, jb)

        orig_rand, orig_randint = torch.rand_like, torch.randint_like
        torch.rand_like = lambda x: torch.tensor(np.asarray(draws.uniform)).to(x.dtype)
        torch.randint_like = lambda x, low, high: torch.tensor(np.asarray(draws.min_steps)).to(x.dtype)
        try:
            tcarry, tloss, tmetrics, touts, _ = thead(return_keys=["logits", "q_halt_logits", "q_continue_logits"],
                                                      carry=tcarry, batch=tb)
        finally:
            torch.rand_like, torch.randint_like = orig_rand, orig_randint
        tmodel.zero_grad()
        if torch_sign is not None:
            tmodel.inner.puzzle_emb.local_weights.grad = None
        ((1 / B) * tloss).backward()

        (jloss, (jcarry, jouts, jmetrics)), (gparams, gtable) = grad_fn(params, table, jcarry, jb, draws)

        np.testing.assert_array_equal(np.asarray(jcarry.halted), tcarry.halted.numpy(), err_msg=f"halted step {step}")
        np.testing.assert_array_equal(np.asarray(jcarry.steps), tcarry.steps.numpy(), err_msg=f"steps step {step}")
        for k in jb:
            np.testing.assert_array_equal(np.asarray(jcarry.current_data[k]), tcarry.current_data[k].numpy())
        d_logits = np.abs(np.asarray(jouts["logits"]) - touts["logits"].numpy()).max()
        d_q = max(np.abs(np.asarray(jouts[k]) - touts[k].numpy()).max() for k in ("q_halt_logits", "q_continue_logits"))
        tl = float(tloss.detach()) / B
        d_loss = abs(float(jloss) - tl) / abs(tl)
        for k in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
            assert int(jmetrics[k]) == int(tmetrics[k]), (k, step)
        np.testing.assert_allclose(float(jmetrics["accuracy"]), float(tmetrics["accuracy"]), rtol=1e-5, atol=1e-6)

        tgrads = {interop.strip_prefix(k): p.grad.detach().numpy() for k, p in tmodel.named_parameters() if p.grad is not None}
        flat = {}
        for key, (path, shape) in interop._layouts(cfg).items():
            node = nnx.to_pure_dict(gparams)
            try:
                for part in path:
                    node = node[part]
            except KeyError:
                continue
            flat[key] = interop.to_torch_layout(key, np.asarray(node))
        assert set(flat) == set(tgrads), (set(flat) ^ set(tgrads))
        d_grad = max(np.abs(flat[k] - tgrads[k]).max() / max(np.abs(tgrads[k]).max(), 1e-12) for k in tgrads)
        if torch_sign is not None:
            pe = tmodel.inner.puzzle_emb
            tg = torch.zeros_like(pe.weights).index_add_(0, pe.local_ids.long(), pe.local_weights.grad).numpy()
            jg = np.asarray(gtable["puzzle_emb"][...])
            d_grad = max(d_grad, np.abs(jg - tg).max() / max(np.abs(tg).max(), 1e-12))

        # Optimiser steps on both sides, both fed the ORIGINAL's gradients: AdamATan2 is scale-invariant, so
        # gradient elements at noise level (~1e-10, opposite signs in any two implementations) would otherwise
        # give full-size updates of opposite sign and the runs would drift apart for reasons outside the model.
        grad_model = nnx.clone(nnx.merge(graphdef, params, table, rest))
        grad_sd = {**{k: np.zeros_like(v) for k, v in sd.items()}, **tgrads}
        if torch_sign is not None:
            grad_sd["puzzle_emb.weights"] = tg
        interop.load_torch_state_dict(grad_model, grad_sd)
        _, gparams, gtable, _ = nnx.split(grad_model, nnx.Param, PuzzleEmbedding, ...)
        _torch_adam_atan2_step(list(tmodel.named_parameters()), torch_adam_state, LR)
        if torch_sign is not None:
            torch_sign.step()
        upd, adam_state = adam.update(gparams, adam_state, params)
        params = jax.tree.map(lambda p, u: p + u, params, upd)
        if torch_sign is not None:
            upd, sign_state = sign.update(gtable, sign_state, table, ids=jcarry.current_data["puzzle_identifiers"])
            table = jax.tree.map(lambda p, u: p + u, table, upd)
        new_sd = {interop.strip_prefix(k): v.detach().float().numpy() for k, v in tmodel.state_dict().items()}
        ours = interop.params_to_torch_state_dict(nnx.to_pure_dict(nnx.merge_state(params, table, rest)), cfg,
                                                  prefix="")
        d_params = max(np.abs(ours[k] - new_sd[k]).max() for k in ours)

        if os.environ.get("PARITY_DEBUG"):
            print(step, dict(logits=d_logits, q=d_q, loss=d_loss, grad=d_grad, params=d_params))
        for key, value in dict(logits=d_logits, q=d_q, loss=d_loss, grad=d_grad, params=d_params).items():
            worst[key] = max(worst[key], float(value))
    print(f"\n[{name}/{loss_type}] worst over {STEPS} steps: {worst}")
    assert worst["logits"] <= 1e-4 and worst["q"] <= 1e-4, worst
    assert worst["loss"] <= 1e-5, worst
    assert worst["grad"] <= 1e-4, worst
    assert worst["params"] <= 1e-5, worst


def test_exported_safetensors_load_into_the_original_class_with_equal_logits(tmp_path):
    """hrm_jax.export.torch_hrm: the file loads strictly into ACTLossHead(HierarchicalReasoningModel_ACTV1(config))
    built from the exported config.json, and gives our logits."""
    import json

    from safetensors.torch import load_file

    from hrm_jax.export import torch_hrm

    hrm_act_v1, orig_losses, _ = _import_original()
    cfg = HRMConfig(vocab_size=V, seq_len=S, puzzle_emb_ndim=64, num_puzzle_identifiers=N_IDS, H_layers=2,
                    L_layers=2, hidden_size=64, num_heads=4, halt_max_steps=4, forward_dtype="float32")
    model = HRM(cfg, rngs=nnx.Rngs(3))
    model.puzzle_emb[...] = jax.random.normal(jax.random.key(4), model.puzzle_emb[...].shape)
    folder = torch_hrm.export_torch_hrm(model, tmp_path / "export", batch_size=B)
    original = orig_losses.ACTLossHead(
        hrm_act_v1.HierarchicalReasoningModel_ACTV1(json.loads((folder / "config.json").read_text())),
        "stablemax_cross_entropy")
    missing, unexpected = original.load_state_dict(load_file(folder / "model.safetensors"), strict=False)
    assert not unexpected and all("rotary_emb" in k for k in missing), (missing, unexpected)
    original.eval()
    rng = np.random.default_rng(1)
    inputs, ids = rng.integers(0, V, (B, S)), rng.integers(0, N_IDS, (B,))
    tb = {"inputs": torch.tensor(inputs).int(), "labels": torch.tensor(inputs).int(),
          "puzzle_identifiers": torch.tensor(ids).int()}
    with torch.no_grad():
        carry = original.initial_carry(tb)
        _, _, _, outputs, _ = original(return_keys=["logits"], carry=carry, batch=tb)
    jb = {k: jnp.asarray(v.numpy()) for k, v in tb.items()}
    _, ours = act.act_step(model, act.initial_carry(model, jb), jb, training=False)
    np.testing.assert_allclose(np.asarray(ours["logits"]), outputs["logits"].numpy(), atol=1e-4)
