"""The model config layout: `model.family`, shared `model.*` fields, one node per family; what validate refuses;
checkpoints of the earlier flat layout read as the new nodes; the optimiser from its config node."""

import dataclasses
import json
import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from hrm_jax import config as config_lib, families, optim, restore, runtime

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from configs import pretrain_python, sudoku  # noqa: E402

FLAT = json.loads((pathlib.Path(__file__).parent / "golden" / "flat_layout_configs.json").read_text())


def test_the_model_node_has_family_shared_fields_and_one_node_per_family():
    model = config_lib.base_config().model
    nodes = {k for k, v in model.items() if hasattr(v, "items")}
    assert nodes == set(config_lib.FAMILIES)
    assert set(model.keys()) - nodes == {"family", *config_lib.SHARED_MODEL_FIELDS}


def test_a_command_line_setting_of_another_familys_node_is_refused():
    c = sudoku.get_config("tiny")  # prepares model.trm for --config.model.family=trm: not an error by itself
    config_lib.validate(c)
    config_lib.validate(c, ("model.hrm.L_cycles", "model.loss_type", "train.steps"))
    with pytest.raises(config_lib.ConfigError, match=r"^config.model.trm.L_cycles: set, but model.family='hrm' "
                       r"does not read model.trm \(it reads model.hrm\)$"):
        config_lib.validate(c, ("model.trm.L_cycles",))
    c.model.family = "transformer"  # sized against model.hrm on puzzles, so that node is read
    config_lib.validate(c, ("model.transformer.size_by", "model.hrm.hidden_size"))
    with pytest.raises(config_lib.ConfigError, match="config.model.hrm_text.preset: set, but"):
        config_lib.validate(c, ("model.hrm_text.preset",))
    code = pretrain_python.get_config("tiny")
    code.model.family = "transformer"
    config_lib.validate(code, ("model.hrm_text.preset",))  # on code the reference is HRM-Text
    code.model.loss_type = "softmax_cross_entropy"
    with pytest.raises(config_lib.ConfigError, match="config.model.loss_type: 'softmax_cross_entropy' is ignored "
                       "by model.family='transformer'"):
        config_lib.validate(code)


def test_the_loss_default_is_stablemax_on_puzzles_and_softmax_on_code():
    assert config_lib.loss_type(config_lib.base_config()) == "stablemax_cross_entropy"
    code = pretrain_python.get_config("tiny")
    assert code.model.loss_type == "" and config_lib.loss_type(code) == "softmax_cross_entropy"
    code.model.loss_type = "cross_entropy"
    with pytest.raises(config_lib.ConfigError, match="config.model.loss_type: unknown loss 'cross_entropy'"):
        config_lib.validate(code)


def test_an_old_flat_field_on_the_command_line_names_where_it_moved():
    argv = ["main", "--config.model.hrm_text_preset=code-100m"]
    line = runtime._config_override_error(KeyError("hrm_text_preset"), argv)
    assert line == "--config.model.hrm_text_preset: no such config field (it moved: --config.model.hrm_text.preset)"
    assert config_lib.moved_field("model.H_cycles") == "model.hrm.H_cycles"
    assert config_lib.moved_field("model.trm") is None and config_lib.moved_field("train.steps") is None


@pytest.mark.parametrize("name", sorted(FLAT))
def test_a_flat_layout_checkpoint_config_builds_the_same_model(name):
    """Configs stored by the code before the per-family nodes (tests/golden/flat_layout_configs.json, written by
    that code with the model config it built): migrated, they build the same model config and loss."""
    case = FLAT[name]
    assert "hrm_text_preset" in case["config"]["model"]  # really the old layout
    config = restore.config_from_dict(case["config"])
    config_lib.validate(config)
    family = families.build_family(config, case["data"])
    assert family.name == case["model_family"]
    assert json.loads(json.dumps(dataclasses.asdict(family.model_config))) == case["model"]
    assert getattr(family, "loss_type", None) == case["loss_type"]
    if name == "hrm_code":
        assert config.model.hrm.causal_act_halting and family.causal_act_halting
    if name == "hrm_text_code":
        assert config.model.hrm_text.remat == case["config"]["model"]["remat"]
        assert config.model.hrm_text.preset == "code-30m" and config.model.loss_type == ""


def test_a_stored_config_of_the_new_layout_is_not_migrated():
    c = pretrain_python.get_config("tiny")
    stored = json.loads(config_lib.to_json(c))
    assert restore.migrate_flat_model(stored) is stored
    assert restore.config_from_dict(stored).to_dict() == c.to_dict()


def test_the_optimisers_come_from_the_optim_node():
    node = config_lib.base_config().optim
    node.lr, node.lr_warmup_steps, node.weight_decay = 1e-2, 0, 0.0
    params = {"w": jnp.ones((3,))}
    grads = {"w": jnp.asarray([100.0, 0.0, -100.0])}
    plain = optim.from_config(node, 10)
    expected, _ = optim.adam_atan2(plain.schedule, node.beta1, node.beta2, 0.0).update(
        grads, optim.adam_atan2(1e-2).init(params), params)
    got, _ = plain.tx.update(grads, plain.tx.init(params), params)
    np.testing.assert_allclose(got["w"], expected["w"])
    assert float(plain.schedule(0)) == pytest.approx(1e-2)
    node.grad_clip_norm = 1e-3  # clipping on: a large then a small gradient (only the first clipped) update
    clipped = optim.from_config(node, 10)  # differently than without clipping (AdamATan2 is scale-invariant)

    def two_steps(tx):
        state = tx.init(params)
        _, state = tx.update(grads, state, params)
        return tx.update({"w": jnp.asarray([1e-4, 0.0, 1e-4])}, state, params)[0]["w"]

    assert not np.allclose(two_steps(clipped.tx), two_steps(plain.tx))
    table = jnp.zeros((4, 2))
    upd, _ = plain.puzzle_tx.update(jnp.ones((4, 2)), plain.puzzle_tx.init(table), table, ids=jnp.asarray([1]))
    assert float(jnp.abs(upd[1]).sum()) > 0 and float(jnp.abs(upd[0]).sum()) == 0
