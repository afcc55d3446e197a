"""Puzzle evaluation (adaptive vs fixed ACT) on the tiny Sudoku run after 2 training steps."""
import pytest

from configs import sudoku
from evals.puzzles import evaluate_puzzles
from hrm_jax import config as config_lib, train


def test_adaptive_and_fixed_exact_accuracy_and_segments(tmp_path):
    c = sudoku.get_config("tiny")
    c.data.generate_num_train = c.data.generate_num_test = 16
    c.data.generate_num_aug = 2
    c.data.global_batch_size = 16
    c.train.steps = 2
    c.train.checkpoint_every = 0
    config_lib.validate(c)
    train.train_and_evaluate(c, str(tmp_path))
    out = evaluate_puzzles(c, str(tmp_path))
    assert out["step"] == 2
    fixed, adaptive = out["fixed"], out["adaptive"]
    assert fixed["count"] == adaptive["count"] > 0
    assert fixed["mean_segments"] == c.model.hrm.halt_max_steps  # every sample runs all segments
    assert 1.0 <= adaptive["mean_segments"] <= c.model.hrm.halt_max_steps
    for m in (fixed, adaptive):
        assert 0.0 <= m["exact_accuracy"] <= m["accuracy"] <= 1.0
    assert "test_time" not in out  # the default eval.test_time is the plain evaluation

    # Test-time settings from the config's eval node: K = 2 noiseless trajectories of 2x the segments.
    c.eval.test_time.trajectories, c.eval.test_time.segments_multiple = 2, 2
    tt = evaluate_puzzles(c, str(tmp_path), max_batches=1)["test_time"]
    assert tt["mean_segments"] == 2 * c.model.hrm.halt_max_steps
    assert tt["segments_per_puzzle"] == 2 * tt["mean_segments"]
    for rule in ("q_halt", "majority", "oracle"):  # identical trajectories: every rule gives the same answer
        assert tt[f"{rule}_exact_accuracy"] == tt["exact_accuracy"]
        assert tt[f"{rule}_accuracy"] == pytest.approx(tt["accuracy"], abs=1e-6)


def test_refuses_a_code_run(tmp_path):
    from configs import mbpp
    with pytest.raises(ValueError, match="model.family 'hrm' or 'trm' and data.kind='puzzle'"):
        evaluate_puzzles(mbpp.get_config("tiny"), str(tmp_path))
