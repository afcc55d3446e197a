"""The SRL trainer: GRPO updates raise the mean reward on a fixed batch; resume is exact; advantages."""
import jax
import numpy as np
import pytest

from configs import edit_srl
from hrm_jax import srl
from input_pipeline.codemods.records import NormalizedRecord
from tests.fixtures_tokenizer import session_tokenizer

RECORDS = [NormalizedRecord(f"r{i}", f"m{i}.py", "python", f"Rename `g` to `h{i}`.", f"x = g({i}, 2)\n",
                            f"x = h{i}({i}, 2)\n", {"language": "python", "rule": {"pattern": "g($$$A)"},
                                                    "fix": f"h{i}($$$A)"}, "train", {"num_edits": 1})
           for i in range(2)]


def letter_e_reward(records, texts):
    """A graded reward a random policy can climb, a sum over its tokens: the letters 'e' it writes, / 16."""
    r = np.asarray([t.count("e") / 16 for t in texts], np.float32)
    return r, r > 0.2, np.ones(len(texts), bool)


def _config(lr=1e-2, steps=10):
    c = edit_srl.get_config("tiny")
    c.model.hrm_text.hidden_size, c.model.hrm_text.intermediate_size, c.model.hrm_text.head_dim = 32, 96, 16
    c.data.seq_len = 48
    c.srl.max_new_tokens = 16
    c.srl.kl_coef = 0.0
    c.optim.lr, c.optim.lr_warmup_steps = lr, 0
    c.train.steps, c.train.checkpoint_every, c.train.log_every = steps, 2, 1
    c.data.global_batch_size = c.srl.group_size * c.srl.prompts_per_step  # 8: one row per CPU device
    return c


def _run(config, workdir, steps=None):
    loop, manager, fp = srl.build(config, str(workdir), records=RECORDS, reward_fn=letter_e_reward,
                                  tokenizer=session_tokenizer())
    return srl.run(loop, manager, fp, str(workdir), steps=steps)


def test_group_advantages():
    adv = srl.group_advantages(np.array([1.0, 0.0, 2.0, 2.0]), 2)
    np.testing.assert_allclose(adv, [1.0, -1.0, 0.0, 0.0], atol=1e-3)


def _loop(config, workdir):
    return srl.build(config, str(workdir), records=RECORDS, reward_fn=letter_e_reward, tokenizer=session_tokenizer())


@pytest.mark.slow  # ~2 min on 2 busy cores: compiles generation, log-probabilities and the step
def test_srl_updates_raise_the_mean_reward_on_a_fixed_batch(tmp_path):
    """Three GRPO updates on one fixed rollout: the policy's reward on it (the group-normalised probability of
    each sample times its reward) rises."""
    loop, manager, _ = _loop(_config(lr=3e-3), tmp_path)
    manager.close()
    state, ref = loop.trainer.init_state(), loop.trainer.init_state()  # the step donates state: ref its own copy
    loop.ref = (ref.params, ref.puzzle_emb, ref.buffers)
    ro = loop.rollout(state, np.array([0, 1]))
    assert ro.rewards.std() > 0

    def policy_reward(st):
        lp = np.asarray(loop.logprobs(st.params, st.puzzle_emb, st.buffers, loop.device_batch(ro)))
        seq = lp.sum(-1).reshape(-1, loop.group)
        w = np.exp(seq - seq.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        return float((w * ro.rewards.reshape(-1, loop.group)).sum(1).mean())

    before = policy_reward(state)
    for _ in range(3):
        state, m = loop.update(state, ro)
    after = policy_reward(state)
    assert after > before + 0.01, (before, after, ro.rewards)
    assert np.isfinite(m["kl"]) and m["kl"] > 0


@pytest.mark.slow  # ~3 min on 2 busy cores: three builds of the trainer
def test_srl_resume_is_exact(tmp_path):
    config = _config(steps=4)
    state, history = _run(config, tmp_path / "a")
    _run(config, tmp_path / "b", steps=2)  # stopped after step 2 (checkpoint_every=2), then resumed
    resumed, tail = _run(config, tmp_path / "b")
    assert [m["srl/reward"] for m in tail] == [m["srl/reward"] for m in history[2:]]
    assert [m["srl/kl"] for m in tail] == [m["srl/kl"] for m in history[2:]]
    for x, y in zip(jax.tree.leaves(jax.device_get(state.params)), jax.tree.leaves(jax.device_get(resumed.params))):
        np.testing.assert_array_equal(x, y)


class _LogitsModel:
    """segment_logits = a fixed table [S, V] for every row."""

    def __init__(self, table):
        self.table = table

    def segment_logits(self, inputs, segment_ids, positions):
        return jax.numpy.broadcast_to(self.table, (*inputs.shape, self.table.shape[-1]))


def test_grpo_loss_by_hand():
    s, v = 4, 3
    table = jax.numpy.asarray(np.random.default_rng(0).normal(size=(s, v)), jax.numpy.float32)
    ids = np.array([[0, 1, 2, 1], [0, 2, 2, 0]], np.int32)
    batch = {"inputs": ids, "targets": ids, "segment_ids": np.ones_like(ids),
             "positions": np.tile(np.arange(s), (2, 1)),
             "loss_mask": np.array([[0, 1, 1, 1], [0, 0, 1, 1]], np.int32),
             "advantages": np.array([[1.0] * s, [-2.0] * s], np.float32)}
    model = _LogitsModel(table)
    logp, valid = srl.token_logprobs(model, batch)
    want = jax.nn.log_softmax(table, -1)
    assert float(logp[0, 0]) == pytest.approx(float(want[0, 1])) and valid.sum() == 5  # position t scores t+1
    family = srl.GrpoFamily(base=None, clip_eps=0.2, kl_coef=0.5)
    same = dict(batch, old_logprobs=np.asarray(logp), ref_logprobs=np.asarray(logp))
    total, _, m = family.train_loss(model, {}, same, None)
    assert float(total) == pytest.approx(-1.0 + 2.0) and float(m["kl"]) == pytest.approx(0.0)  # ratio 1, no KL
    shifted = dict(same, ref_logprobs=np.asarray(logp) - 0.1 * np.asarray(valid))
    total2, _, m2 = family.train_loss(model, {}, shifted, None)
    k3 = np.exp(-0.1) + 0.1 - 1.0
    assert float(m2["kl"]) == pytest.approx(k3, rel=1e-4)
    assert float(total2) == pytest.approx(1.0 + 0.5 * 2 * k3, rel=1e-4)


def test_srl_refuses_several_processes_in_one_line(tmp_path, monkeypatch):
    """Each host would sample and reward the whole global batch: refused rather than silently wrong."""
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(NotImplementedError, match="runs on one process .*multi-host rollouts are not implemented"):
        _loop(_config(), tmp_path)
