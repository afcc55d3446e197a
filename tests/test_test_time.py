"""Test-time scaling (hrm_jax/test_time.py): the plain case is today's evaluation bitwise, noise is reproducible across
batch sizes, the selection rules pick what they claim, and memory grows linearly in K."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import families, test_time
from hrm_jax.model.hrm import HRMConfig
from hrm_jax.model.trm import TRMConfig

S, V = 8, 6


def _family(name: str, adaptive: bool = False):
    if name == "hrm":
        mc = HRMConfig(vocab_size=V, seq_len=S, puzzle_emb_ndim=16, num_puzzle_identifiers=4, H_cycles=2, L_cycles=2,
                       H_layers=1, L_layers=1, hidden_size=16, num_heads=2, halt_max_steps=3, forward_dtype="float32")
        return families.HRMFamily(mc, "softmax_cross_entropy", code=False, eval_adaptive=adaptive)
    mc = TRMConfig(vocab_size=V, seq_len=S, puzzle_emb_ndim=16, num_puzzle_identifiers=4, H_cycles=2, L_cycles=2,
                   L_layers=1, hidden_size=16, num_heads=2, halt_max_steps=3, forward_dtype="float32", puzzle_emb_len=2)
    return families.TRMFamily(mc, "softmax_cross_entropy", code=False, eval_adaptive=adaptive)


def _model(family):
    model = family.build(nnx.Rngs(0))
    # A Q head that says different things for different puzzles, so adaptive halting and q_halt selection matter.
    model.q_head.kernel[...] = jax.random.normal(jax.random.key(1), model.q_head.kernel.shape) * 2.0
    model.q_head.bias[...] = jnp.zeros((2,))
    return model


def _batch(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"inputs": jnp.asarray(rng.integers(1, V, (n, S)), jnp.int32),
            "labels": jnp.asarray(rng.integers(1, V, (n, S)), jnp.int32),
            "puzzle_identifiers": jnp.asarray(rng.integers(0, 4, (n,)), jnp.int32)}


def _metrics(family, model, batch):
    return jax.device_get(nnx.jit(lambda m, b: family.eval_metrics(m, b))(model, batch))


@pytest.mark.parametrize(("name", "adaptive"), [("hrm", False), ("hrm", True), ("trm", True)])
def test_one_trajectory_without_noise_is_todays_evaluation_bitwise(name, adaptive):
    family = _family(name, adaptive)
    model, batch = _model(family), _batch(6)
    plain = _metrics(family, model, batch)
    tt = _metrics(families.with_test_time(family, test_time.TestTimeSettings(selection="majority")), model, batch)
    for key, value in plain.items():
        assert np.array_equal(value, tt[key]), key
    assert tt["segments_total"] == plain["steps"]
    if adaptive:
        assert plain["steps"] < 6 * family.model_config.halt_max_steps  # some puzzle halted early


def test_noise_draws_are_bitwise_the_same_whatever_the_batch():
    batch = _batch(8)
    order = np.array([5, 2, 7, 0])

    @jax.jit
    def draws(b):
        keys = test_time.puzzle_keys(3, b, 4).reshape(-1)
        steps = jnp.tile(jnp.arange(4), b["inputs"].shape[0])
        z = jnp.zeros((keys.shape[0], S, 16))
        return test_time.Noise(keys, 1.0, "step")._add(z, steps, 5).reshape(-1, 4, S, 16)

    whole, sub = draws(batch), draws({k: v[order] for k, v in batch.items()})
    np.testing.assert_array_equal(whole[order], sub)
    assert not np.array_equal(whole[:, 0], whole[:, 1])  # trajectories draw differently
    assert not np.array_equal(whole[0], whole[1])  # and puzzles do


@pytest.mark.parametrize(("name", "per"), [("trm", "step"), pytest.param("hrm", "segment", marks=pytest.mark.slow)])
def test_noise_is_reproducible_across_batch_sizes(name, per):
    family = _family(name, adaptive=True)
    model, batch = _model(family), _batch(8)
    settings = test_time.TestTimeSettings(trajectories=3, noise_scale=0.5, noise_per=per, seed=7)

    def run(b):
        return nnx.jit(lambda m, b: test_time.run_trajectories(m, b, settings, adaptive=True))(model, b)

    whole, steps = run(batch)
    order = np.array([5, 2, 7, 0])  # another batch size and another order
    shuffled, shuffled_steps = run({k: v[order] for k, v in batch.items()})
    preds = np.asarray(test_time.predictions(whole["logits"]))
    np.testing.assert_array_equal(preds[order], test_time.predictions(shuffled["logits"]))
    np.testing.assert_array_equal(np.asarray(steps)[order], shuffled_steps)
    # The draws are bitwise batch-independent (above); the model's fp32 matmuls round differently at another
    # batch size, so the Q logits (|q| up to ~10 here) agree to fp32 accumulation error relative to their scale.
    scale = float(np.abs(whole["q_halt_logits"]).max())
    np.testing.assert_allclose(whole["q_halt_logits"][order], shuffled["q_halt_logits"], rtol=0, atol=1e-5 * scale)
    # The noise does something: trajectories of a puzzle differ from each other.
    assert not np.allclose(whole["q_halt_logits"][:, 0], whole["q_halt_logits"][:, 1])
    again, _ = run(batch)
    np.testing.assert_array_equal(whole["logits"], again["logits"])


def test_zero_noise_scale_traces_no_noise():
    family = _family("trm")
    model, batch = _model(family), _batch(4)
    noisy_zero = test_time.TestTimeSettings(trajectories=2, noise_scale=0.0)
    out, _ = nnx.jit(lambda m, b: test_time.run_trajectories(m, b, noisy_zero, adaptive=False))(model, batch)
    np.testing.assert_array_equal(out["logits"][:, 0], out["logits"][:, 1])


def _constructed(preds_BKS, q_halt_BK):
    preds = np.asarray(preds_BKS)
    logits = jax.nn.one_hot(preds, V) * 10.0
    return {"logits": logits, "q_halt_logits": jnp.asarray(q_halt_BK, jnp.float32),
            "q_continue_logits": jnp.zeros(np.shape(q_halt_BK), jnp.float32)}


def test_q_halt_selection_picks_the_most_confident_trajectory():
    labels = jnp.asarray([[1, 2, 3, 4], [4, 3, 2, 1]])
    preds = [[[1, 1, 1, 1], [1, 2, 3, 4], [2, 2, 2, 2]],  # puzzle 0: trajectory 1 is right and most confident
             [[4, 3, 2, 1], [1, 1, 1, 1], [4, 3, 2, 2]]]  # puzzle 1: trajectory 2 (wrong) is most confident
    q_halt = [[-1.0, 3.0, 0.5], [0.0, -2.0, 1.0]]
    outputs = _constructed(preds, q_halt)
    picks = test_time.selections(outputs, labels)
    np.testing.assert_array_equal(picks["q_halt"], [1, 2])
    np.testing.assert_array_equal(picks["oracle"], [1, 0])
    m = test_time.score(outputs, jnp.ones((2, 3), jnp.int32), labels, "q_halt", "softmax_cross_entropy")
    assert m["exact_accuracy"] == 1 and m["by_q_halt_exact_accuracy"] == 1
    assert m["by_oracle_exact_accuracy"] == 2
    np.testing.assert_allclose([m["accuracy"], m["by_q_halt_accuracy"]], 1.0 + 0.75)
    np.testing.assert_allclose(m["by_oracle_accuracy"], 2.0)
    assert m["segments_total"] == 6


def test_majority_vote_picks_the_most_common_answer_ties_by_q_halt():
    labels = jnp.asarray([[1, 2, 3], [1, 2, 3]])
    a, b, c = [1, 2, 3], [3, 2, 1], [2, 2, 2]
    preds = [[b, a, a, b, a], [b, c, a, b, a]]  # puzzle 0: a 3 votes vs b 2; puzzle 1: a, b tie at 2
    q_halt = [[5.0, -1.0, 0.0, 4.0, -2.0], [1.0, 9.0, 0.5, 2.0, 0.1]]  # the confident ones are the minority
    outputs = _constructed(preds, q_halt)
    picks = test_time.selections(outputs, labels)
    assert picks["majority"][0] in (1, 2, 4)
    assert int(picks["majority"][0]) == 2  # among the majority, the highest q_halt
    assert int(picks["majority"][1]) == 3  # tie a / b: b's best q_halt (2.0) beats a's (0.5); c has 1 vote
    m = test_time.score(outputs, jnp.ones((2, 5), jnp.int32), labels, "majority", "softmax_cross_entropy")
    assert m["by_majority_exact_accuracy"] == 1 and m["exact_accuracy"] == 1
    assert m["by_q_halt_exact_accuracy"] == 0  # the most confident trajectories are wrong on both


def test_settings_refuse_bad_values_and_config_round_trip():
    with pytest.raises(ValueError, match="trajectories must be >= 1"):
        test_time.TestTimeSettings(trajectories=0)
    with pytest.raises(ValueError, match="selection must be one of"):
        test_time.TestTimeSettings(selection="best")
    assert test_time.TestTimeSettings(segments=8).max_segments(4) == 8
    assert test_time.TestTimeSettings(segments_multiple=3).max_segments(4) == 12
    from configs import sudoku
    c = sudoku.get_config("tiny")
    c.eval.test_time.trajectories, c.eval.test_time.noise_scale = 4, 0.2
    assert test_time.from_config(c.eval.test_time) == test_time.TestTimeSettings(trajectories=4, noise_scale=0.2)
    assert families._test_time(c, code=False).trajectories == 4


def _eval_step_temp_bytes(family, model, k: int, batch_size: int = 4) -> int:
    fam = families.with_test_time(family, test_time.TestTimeSettings(trajectories=k, noise_scale=0.1))
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda s, b: fam.eval_metrics(nnx.merge(graphdef, s), b))
    return fn.lower(state, _batch(batch_size)).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", ["hrm", pytest.param("trm", marks=pytest.mark.slow)])
def test_eval_step_memory_grows_linearly_in_trajectories(name):
    family = _family(name)
    model = _model(family)
    temp = {k: _eval_step_temp_bytes(family, model, k) for k in (1, 2, 4, 8)}
    per_k = (temp[8] - temp[4]) / 4
    assert per_k > 0
    # The same per-trajectory cost between every pair of K: temp(K) = fixed + K x per-trajectory.
    for lo, hi in ((1, 2), (2, 4)):
        assert (temp[hi] - temp[lo]) / (hi - lo) == pytest.approx(per_k, rel=0.1), temp


def test_decode_time_segments_of_the_causal_hrm():
    from hrm_jax.model.hrm import HRM
    cfg = HRMConfig(vocab_size=V, seq_len=S, puzzle_emb_ndim=0, H_cycles=1, L_cycles=1, H_layers=1, L_layers=1,
                    hidden_size=16, num_heads=2, halt_max_steps=2, forward_dtype="float32", causal=True)
    model = HRM(cfg, rngs=nnx.Rngs(0))
    sites = model.kv_cache_layout()[0]
    inputs = _batch(2)["inputs"]
    positions = jnp.broadcast_to(jnp.arange(S), inputs.shape)
    mask = model.attention_mask(positions, positions)
    two = model.hidden_states(inputs, positions, mask)
    deeper = test_time.with_generation_segments(model, 3)
    assert deeper.kv_cache_layout()[0] == sites // 2 * 3
    three = deeper.hidden_states(inputs, positions, mask)
    assert not np.allclose(two, three)
    with pytest.raises(ValueError, match="causal HRM / TRM"):
        test_time.with_generation_segments(HRM(cfg.replace(causal=False), rngs=nnx.Rngs(0)), 3)


def test_sweep_writes_table_json_and_plot(tmp_path):
    from evals import test_time_sweep
    points = [{"segments_multiple": m, "segments": 4 * m, "trajectories": k, "count": 32.0,
               "segments_per_puzzle": 4.0 * m * k, "flops_per_puzzle": 1e8 * m * k,
               **{f"{r}_{metric}": 0.1 * m + (0.2 if r == "oracle" else 0.0) for r in test_time.SELECTIONS
                  for metric in ("exact_accuracy", "accuracy")}} for k in (1, 4) for m in (1, 2)]
    result = {"step": 5, "family": "trm", "halt_max_steps": 4, "noise_scale": 0.1, "noise_per": "step",
              "adaptive": False, "seed": 0, "segment_flops_per_puzzle": 1e8 / 4, "segment_flops_per_puzzle_xla": 2.6e7,
              "points": points}
    test_time_sweep.write(result, str(tmp_path))
    table = (tmp_path / "test_time.md").read_text()
    assert "exact (oracle)" in table and "| 2x (8) | 4 | 32.00 | 8e+08 | 0.2000 | 0.2000 | 0.4000 |" in table
    assert (tmp_path / "test_time.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="--segments: expected positive integers"):
        test_time_sweep._ints("0,2", "segments")
