"""Parity with the original TRM (SamsungSAILMontreal/TinyRecursiveModels @ e7b6871), on every CI run.

`tests/golden/trm_original_golden.npz` holds what the original computed (written by
`tests/golden/make_trm_golden.py`, which runs the original's model, loss head, SignSGD, EMA helper and the adam-atan2
rule in fp32; see its docstring for the one regeneration command). Here our TRM, loaded with the same seeded weights
through `hrm_jax.interop`, runs the same ACT_STEPS training steps with the same batches and exploration draws, for
attention and mlp_t, puzzle embedding on and off. Checked at every step: logits and q values (<= 1e-4 absolute),
loss (<= 1e-5 relative), the integer metrics, halting and steps (identical), every gradient, puzzle table included
(<= 1e-4 of its tensor's largest gradient); after the last step: the parameters after AdamATan2 / SignSGD and the EMA
shadow. Each step starts from the original's recurrent carry (z_H, z_L) of the step before (halting, steps and slot
resets stay ours): a slot carried over k segments has gone through k x H_cycles x (L_cycles + 1) x L_layers blocks,
and with random weights fp32 rounding differences grow about 5x per segment (measured: logits 1e-6 after one segment,
4e-4 after four), so a free-running comparison would measure that conditioning, not the model; the carry drift of
one segment is reported and bounded like the logits. Both optimisers are fed the original's gradients (as
tests/test_original_parity.py does: AdamATan2 is scale-invariant, so noise-level gradient elements would otherwise
give opposite full-size updates). With TRM_ORIGINAL_SRC pointing at a checkout, the export is also loaded into the
original class itself (strict) and compared by logits.
"""

import copy
import functools
import importlib.util
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import interop, losses, optim
from hrm_jax.model import act
from hrm_jax.model.hrm import InnerCarry, PuzzleEmbedding
from hrm_jax.model.trm import TRM, TRMConfig

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("make_trm_golden", GOLDEN_DIR / "make_trm_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

GOLDEN = np.load(GOLDEN_DIR / "trm_original_golden.npz")
META = json.loads(GOLDEN["meta"].tobytes())


def trm_config(original: dict) -> TRMConfig:
    return TRMConfig(**{k: v for k, v in original.items() if k not in ("batch_size", "H_layers")})


def _torch_layout(tree, config) -> dict[str, np.ndarray]:
    """Torch-layout arrays of the variables `tree` holds (a subset of the state_dict, e.g. only parameters)."""
    pure, out = nnx.to_pure_dict(tree), {}
    for key, (path, _) in interop._layouts(config).items():
        node = pure
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            out[key] = interop.to_torch_layout(key, np.asarray(node))
    return out


@functools.lru_cache(maxsize=None)
def _abstract(config: TRMConfig):
    return nnx.split(nnx.eval_shape(lambda: TRM(config, rngs=nnx.Rngs(0))))


def _split(config: TRMConfig, flat: dict[str, np.ndarray]):
    """(graphdef, params, puzzle table, buffers) of a TRM holding the torch-layout arrays `flat` (keys of the
    state_dict absent from `flat` are 0). Built abstractly: no per-shape initialiser compiles."""
    graphdef, state = _abstract(config)
    state = copy.deepcopy(state)  # replace_by_pure_dict writes in place
    shapes = {k: interop.to_torch_layout(k, np.empty(shape, np.int8)).shape
              for k, (_, shape) in interop._layouts(config).items()}
    pure = interop.torch_state_dict_to_params({k: flat.get(k, np.zeros(v, np.float32)) for k, v in shapes.items()},
                                              config)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, pure))
    return nnx.split(nnx.merge(graphdef, state), nnx.Param, PuzzleEmbedding, ...)


def test_golden_file_is_small_and_from_the_pinned_commit():
    assert (GOLDEN_DIR / "trm_original_golden.npz").stat().st_size < 2_100_000
    assert META["commit"] == make_golden.PINNED_COMMIT
    assert META["act_steps"] >= 6
    kinds = {(v["config"]["mlp_t"], v["config"]["puzzle_emb_ndim"] > 0) for v in META["variants"].values()}
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}


@pytest.mark.parametrize("name", sorted(make_golden.VARIANTS))
def test_training_steps_match_the_original(name):
    variant = META["variants"][name]
    cfg, loss_type = trm_config(variant["config"]), variant["loss_type"]
    b = variant["config"]["batch_size"]
    shapes = {k: tuple(v) for k, v in json.loads(GOLDEN[f"{name}/shapes"].tobytes()).items()}
    weights = make_golden.seeded_state_dict(shapes, META["seed"])

    assert set(weights) == set(interop._layouts(cfg))  # the original's state_dict keys are exactly ours
    graphdef, params, table, rest = _split(cfg, weights)
    puzzle = cfg.puzzle_emb_ndim > 0
    adam = optim.adam_atan2(META["lr"], *META["betas"], weight_decay=META["weight_decay"])
    sign = optim.sparse_sign_sgd(META["puzzle_emb_lr"], META["puzzle_emb_weight_decay"])
    adam_state, sign_state = adam.init(params), sign.init(table)
    ema = jax.tree.map(jnp.copy, params)

    @jax.jit
    def optimiser_step(params, table, adam_state, sign_state, ema, grads, table_grads, ids):
        updates, adam_state = adam.update(grads, adam_state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        if puzzle:
            updates, sign_state = sign.update(table_grads, sign_state, table, ids=ids)
            table = jax.tree.map(lambda p, u: p + u, table, updates)
        return params, table, adam_state, sign_state, optim.ema_update(ema, params, META["ema_mu"])

    def loss_fn(params, table, carry, batch, draws):
        m = nnx.merge(graphdef, params, table, rest)
        carry, outputs = act.act_step(m, carry, batch, training=True, draws=draws)
        total, metrics = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, loss_type)
        return total / b, (carry, outputs, metrics)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    carry = None
    worst = dict(logits=0.0, q=0.0, loss=0.0, grad=0.0)
    for step in range(META["act_steps"]):
        g = {k[len(f"{name}/{step}/"):]: GOLDEN[k] for k in GOLDEN.files if k.startswith(f"{name}/{step}/")}
        d = make_golden.step_data(META["seed"], step, cfg.halt_max_steps)
        batch = {k: jnp.asarray(d[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
        draws = act.ExplorationDraws(uniform=jnp.asarray(d["uniform"]), min_steps=jnp.asarray(d["min_steps"]))
        if carry is None:
            carry = act.initial_carry(nnx.merge(graphdef, params, table, rest), batch)
        (loss, (carry, outputs, metrics)), (g_params, g_table) = grad_fn(params, table, carry, batch, draws)

        np.testing.assert_array_equal(np.asarray(carry.halted), g["halted"], err_msg=f"halted, step {step}")
        np.testing.assert_array_equal(np.asarray(carry.steps), g["steps"], err_msg=f"steps, step {step}")
        assert "target_q_continue" not in outputs  # no second forward (no_ACT_continue)
        worst["logits"] = max(worst["logits"], float(np.abs(np.asarray(outputs["logits"]) - g["logits"]).max()))
        worst["q"] = max(worst["q"], *(float(np.abs(np.asarray(outputs[k]) - g[k]).max())
                                       for k in ("q_halt_logits", "q_continue_logits")))
        worst["loss"] = max(worst["loss"], abs(float(loss) - float(g["loss"])) / abs(float(g["loss"])))
        for k in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
            assert int(metrics[k]) == int(g["metric/" + k]), (k, step)
        for k in ("accuracy", "lm_loss", "q_halt_loss"):
            np.testing.assert_allclose(float(metrics[k]), float(g["metric/" + k]), rtol=1e-5, atol=1e-6)

        if "carry_z_H" in g:  # the next step resumes from the original's recurrent state (see the docstring)
            worst["carry"] = max(worst.get("carry", 0.0), *(
                float(np.abs(np.asarray(getattr(carry.inner, k)) - g[f"carry_{k}"]).max()) for k in ("z_H", "z_L")))
            carry = carry.replace(inner=InnerCarry(z_H=jnp.asarray(g["carry_z_H"]), z_L=jnp.asarray(g["carry_z_L"])))

        ours = _torch_layout(nnx.merge_state(g_params, g_table), cfg)
        theirs = {k[len("grad/"):]: v for k, v in g.items() if k.startswith("grad/")}
        assert set(theirs) <= set(ours) and set(ours) - set(theirs) <= {"H_init", "L_init"}
        for k, tg in theirs.items():
            worst["grad"] = max(worst["grad"], float(np.abs(ours[k] - tg).max() / max(np.abs(tg).max(), 1e-12)))

        # The optimiser steps and the EMA, fed the original's gradients.
        _, og_params, og_table, _ = _split(cfg, theirs)
        if puzzle:
            np.testing.assert_array_equal(np.asarray(carry.current_data["puzzle_identifiers"]),
                                          g["slot_puzzle_identifiers"])
        params, table, adam_state, sign_state, ema = optimiser_step(
            params, table, adam_state, sign_state, ema, og_params, og_table, carry.current_data["puzzle_identifiers"])

    print(f"\n[{name}] worst over {META['act_steps']} steps: {worst}")
    assert worst["logits"] <= 1e-4 and worst["q"] <= 1e-4, worst
    assert worst["loss"] <= 1e-5, worst
    assert worst["grad"] <= 1e-4, worst
    assert worst["carry"] <= 1e-4, worst

    final = {k[len(f"{name}/final/param/"):]: GOLDEN[k] for k in GOLDEN.files if k.startswith(f"{name}/final/param/")}
    ours = _torch_layout(nnx.merge_state(params, table, rest), cfg)
    assert set(ours) == set(final)
    d_params = max(float(np.abs(ours[k] - final[k]).max()) for k in final)
    final_ema = {k[len(f"{name}/final/ema/"):]: GOLDEN[k] for k in GOLDEN.files if k.startswith(f"{name}/final/ema/")}
    ours_ema = _torch_layout(ema, cfg)
    assert set(final_ema) == set(ours_ema)  # every trainable parameter; the puzzle table and buffers are not EMA'd
    d_ema = max(float(np.abs(ours_ema[k] - final_ema[k]).max()) for k in final_ema)
    print(f"[{name}] parameters after {META['act_steps']} AdamATan2/SignSGD steps: {d_params:.2e}; EMA: {d_ema:.2e}")
    assert d_params <= 1e-6 and d_ema <= 1e-6, (d_params, d_ema)


@pytest.mark.skipif(not os.environ.get("TRM_ORIGINAL_SRC"), reason="set TRM_ORIGINAL_SRC to a TinyRecursiveModels "
                    "checkout to load the export into the original class itself")
def test_exported_state_dict_loads_strictly_into_the_original_with_equal_logits(tmp_path):
    """hrm_jax.export.torch_trm -> TinyRecursiveReasoningModel_ACTV1(config.json) with load_state_dict(strict=True),
    then the original's eval-mode logits equal ours (mlp_t and attention)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file  # noqa: PLC0415

    from hrm_jax.export import torch_trm  # noqa: PLC0415

    sys.path.insert(0, os.environ["TRM_ORIGINAL_SRC"])
    from models import losses as orig_losses  # noqa: PLC0415
    from models.recursive_reasoning import trm as orig_trm  # noqa: PLC0415

    for name in ("att_rope_puzzle", "mlpt_puzzle"):
        cfg = trm_config(META["variants"][name]["config"])
        model = TRM(cfg, rngs=nnx.Rngs(3))
        model.puzzle_emb[...] = jax.random.normal(jax.random.key(4), model.puzzle_emb[...].shape)
        folder = torch_trm.export_torch_trm(model, tmp_path / name, batch_size=6)
        original = orig_losses.ACTLossHead(orig_trm.TinyRecursiveReasoningModel_ACTV1(
            json.loads((folder / "config.json").read_text())), "stablemax_cross_entropy")
        original.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
        original.eval()
        d = make_golden.step_data(0, 0, cfg.halt_max_steps)
        batch = {k: torch.from_numpy(d[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
        with torch.no_grad():
            _, _, _, outputs, _ = original(return_keys=["logits"], carry=original.initial_carry(batch), batch=batch)
        jb = {k: jnp.asarray(v.numpy()) for k, v in batch.items()}
        _, ours = act.act_step(model, act.initial_carry(model, jb), jb, training=False)
        np.testing.assert_allclose(np.asarray(ours["logits"]), outputs["logits"].numpy(), atol=1e-4)
