"""Gradient accumulation (`optim.grad_accum_steps`): micro-batches in one train step give the large batch's loss,
metrics, carry and update (within float re-association: 1e-6), for the puzzle HRM (ACT carry, exploration draws,
puzzle table) and HRM-Text on packed code; a batch that does not divide is refused."""

import pathlib
import sys

import jax
import numpy as np
import pytest

from hrm_jax import config as config_lib, data as data_lib, families, parallel, train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from configs import mbpp, synthetic  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402


def _steps(config, accum, steps, workdir):
    config = config.copy_and_resolve_references()
    config.optim.grad_accum_steps = accum
    config_lib.validate(config)
    ds, spec = data_lib.build(config, "train", workdir=str(workdir))
    trainer = train.Trainer(config, families.build_family(config, spec.as_dict()), spec.seq_len,
                            parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    it, state, metrics, first_carry = iter(ds), trainer.init_state(), [], None
    for _ in range(steps):
        with jax.set_mesh(trainer.mesh):
            state, m = trainer.train_step(state, train.put_batch(trainer, next(it)))
        metrics.append(jax.device_get(m))
        first_carry = first_carry if metrics[1:] else jax.device_get(state.carry)
    return jax.device_get(state), metrics, first_carry


def _assert_same_run(one, many):
    (s1, m1, c1), (s4, m4, c4) = one, many
    for a, b in zip(m1, m4, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            if np.issubdtype(np.asarray(a[k]).dtype, np.integer):
                assert a[k] == b[k], k  # counts are exact
            else:
                np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
    for x, y in zip(jax.tree.leaves((s1.params, s1.puzzle_emb)), jax.tree.leaves((s4.params, s4.puzzle_emb)),
                    strict=True):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    for x, y in zip(jax.tree.leaves(s1.carry), jax.tree.leaves(s4.carry), strict=True):
        if not np.issubdtype(x.dtype, np.floating):
            np.testing.assert_array_equal(y, x)  # halted, steps, the rows each slot works on
    # The carry after the first step (same parameters; later steps' parameters differ by re-association only).
    # Its hidden states went through every cycle's matmuls at another row count: CPU kernels differ by ~2e-6.
    for x, y in zip(jax.tree.leaves(c1), jax.tree.leaves(c4), strict=True):
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-5)
        else:
            np.testing.assert_array_equal(y, x)


def test_puzzle_hrm_accumulated_equals_large_batch(tmp_path):
    c = synthetic.get_config("tiny")
    c.model.hrm.halt_exploration_prob = 0.3  # the exploration draws must follow their rows into micro-batches
    one, many = _steps(c, 1, 3, tmp_path), _steps(c, 4, 3, tmp_path)
    assert one[1][0]["count"] == many[1][0]["count"]
    _assert_same_run(one, many)


def test_hrm_text_accumulated_equals_large_batch(tmp_path):
    tok = tmp_path / "code.model"
    session_tokenizer().save(tok)
    c = mbpp.get_config("tiny")
    c.data.tokenizer, c.data.data_dir, c.data.seq_len = str(tok), str(data_dir()), 96
    c.data.global_batch_size = 4
    c.optim.lr_warmup_steps = 1
    _assert_same_run(_steps(c, 1, 2, tmp_path), _steps(c, 2, 2, tmp_path))


def test_validate_refuses_an_indivisible_batch():
    c = synthetic.get_config("tiny")
    c.optim.grad_accum_steps = 3
    with pytest.raises(config_lib.ConfigError, match="optim.grad_accum_steps: data.global_batch_size 16 is not "
                                                     "divisible by 3"):
        config_lib.validate(c)
    c.optim.grad_accum_steps = 0
    with pytest.raises(config_lib.ConfigError, match="must be >= 1"):
        config_lib.validate(c)
