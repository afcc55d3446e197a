"""The SRL trainer: from a Stage 1 (edit_actions) checkpoint, sample G actions per teacher state, reward them
against the teacher's action (`evals.edit_reward`), and update the policy with a group-relative advantage.

One step (`SrlLoop.step`):
    P codemod records (a checkpointed grain iterator of indices) -> prompts, each repeated G times
    -> sample completions (`generate`, temperature `srl.temperature`, seeded by fold_in(seed, step))
    -> reward r (SRL reward of the decoded action) and accuracy (the action applied gives exactly post)
    -> advantage A = (r - mean_group) / (std_group + 1e-4)
    -> rows prompt + completion (loss mask on the completion), the old policy's and the reference's token
       log-probabilities, and one update of the train step (`train.Trainer`, jitted and sharded as for SFT) whose
       family loss is GRPO's (`GrpoFamily`):
           ratio = exp(logp - logp_old);  pg = -min(ratio A, clip(ratio, 1 - eps, 1 + eps) A)
           kl = exp(logp_ref - logp) - (logp_ref - logp) - 1   (k3 estimator, to the starting policy)
           loss = per-row mean over completion tokens of pg + beta kl, summed over rows / rows
The reference policy is the `init_from` checkpoint's parameters (re-read on resume). Checkpoints are the train
step's (Orbax: state, prompt-iterator position, meta); a resumed run repeats the same samples and updates.
metrics.jsonl gets srl/reward, srl/accuracy, srl/valid (parsable actions), srl/kl, srl/clip_fraction, loss.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, NamedTuple, Sequence

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from hrm_jax import checkpoint as ckpt_lib
from hrm_jax import data as data_lib
from hrm_jax import families, generate as gen_lib, losses, metrics as metrics_lib, parallel, resume
from hrm_jax import train as train_lib
from hrm_jax.progress import say

GRPO_KEYS = ("advantages", "old_logprobs", "ref_logprobs")

# reward_fn(records of the rows, decoded completions) -> (rewards [R], accuracy flags [R], valid flags [R])
RewardFn = Callable[[Sequence[Any], Sequence[str]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def token_logprobs(model, batch) -> tuple[jax.Array, jax.Array]:
    """(log p(next token) [B, S] float32, valid [B, S]) of packed rows: position t scores token t+1 where the
    loss mask is 1 (`losses.causal_lm_labels`); 0 elsewhere."""
    labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
    logits = model.segment_logits(batch["inputs"], batch["segment_ids"], batch["positions"]).astype(jnp.float32)
    valid = labels != losses.IGNORE_LABEL_ID
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.where(valid, labels, 0)[..., None], axis=-1)[..., 0]
    return jnp.where(valid, picked, 0.0), valid


@dataclasses.dataclass
class GrpoFamily:
    """A code family whose train loss is GRPO's clipped-ratio objective with a KL penalty (module docstring)."""

    base: Any
    clip_eps: float = 0.2
    kl_coef: float = 0.05

    def __getattr__(self, name):  # build, initial_carry, num_params, ... are the base family's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return tuple(self.base.batch_keys) + GRPO_KEYS

    def train_loss(self, model, carry, batch, rng, draws=None, step=None):
        del rng, draws, step
        logp, valid = token_logprobs(model, batch)
        ratio = jnp.exp(logp - batch["old_logprobs"])
        adv = batch["advantages"]
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - self.clip_eps, 1 + self.clip_eps) * adv)
        delta = batch["ref_logprobs"] - logp
        kl = jnp.exp(delta) - delta - 1.0
        counts = valid.sum(-1)
        per_row = lambda x: (jnp.where(valid, x, 0.0).sum(-1) / jnp.maximum(counts, 1))  # noqa: E731
        total = (per_row(pg) + self.kl_coef * per_row(kl)).sum()
        rows = jnp.maximum((counts > 0).sum(), 1)
        clipped = (jnp.abs(ratio - 1.0) > self.clip_eps) & valid
        m = {"kl": per_row(kl).sum() / rows, "pg_loss": per_row(pg).sum() / rows,
             "clip_fraction": clipped.sum() / jnp.maximum(valid.sum(), 1), "tokens": valid.sum()}
        return total, carry, m


def _logprob_fn(trainer: train_lib.Trainer):
    def fn(params, table, buffers, batch):
        with nnx.logical_axis_rules(parallel.LOGICAL_AXIS_RULES):
            return token_logprobs(nnx.merge(trainer.graphdef, params, table, buffers), batch)[0]
    st = trainer.state_shardings
    return jax.jit(fn, in_shardings=(st.params, st.puzzle_emb, st.buffers, trainer.batch_shardings),
                   out_shardings=parallel.batch_sharding(trainer.mesh, 2))


def group_advantages(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """(r - mean of its group) / (std of its group + 1e-4); rows are grouped in consecutive runs of G."""
    r = np.asarray(rewards, np.float32).reshape(-1, group_size)
    return ((r - r.mean(1, keepdims=True)) / (r.std(1, keepdims=True) + 1e-4)).reshape(-1)


def action_reward_fn(records, texts):
    """The SRL reward of each decoded completion against its record's action; accuracy = the action, applied
    (in process: only a rule runs), gives exactly the post-code; valid = the action parses."""
    from evals.edit_executor import execute  # noqa: PLC0415
    from evals.edit_reward import INVALID_REWARD, srl_reward  # noqa: PLC0415

    rewards = np.asarray([srl_reward(r.action, t) for r, t in zip(records, texts)], np.float32)
    accurate = np.asarray([execute(t, r.pre, r.post, r.meta.get("num_edits"), sandboxed=False).applied
                           if reward > INVALID_REWARD else False for r, t, reward in zip(records, texts, rewards)])
    return rewards, accurate, rewards > INVALID_REWARD


class Rollout(NamedTuple):
    prompts: list
    completions: list  # sampled token ids, </s> included when produced
    texts: list
    rewards: np.ndarray
    accurate: np.ndarray
    valid: np.ndarray


class SrlLoop:
    """Sampling, rewarding and updating for one config (see the module docstring)."""

    def __init__(self, config: ml_collections.ConfigDict, trainer: train_lib.Trainer, tokenizer, records: Sequence,
                 prompt_fn: Callable[[Any], list[int]], reward_fn: RewardFn = action_reward_fn):
        self.config, self.trainer, self.tokenizer, self.records = config, trainer, tokenizer, list(records)
        self.prompt_fn, self.reward_fn = prompt_fn, reward_fn
        s = config.srl
        self.group, self.prompts = s.group_size, s.prompts_per_step
        self.seq_len = trainer.seq_len
        self.prompt_len = self.seq_len - s.max_new_tokens
        self.sampling = gen_lib.SamplingConfig(max_new_tokens=s.max_new_tokens, temperature=s.temperature,
                                               top_k=s.top_k, stop_tokens=(tokenizer.eos_id,),
                                               pad_token_id=tokenizer.pad_id)
        self.logprobs = _logprob_fn(trainer)
        self.ref = None  # (params, table, buffers) of the starting policy

    def prompt_iterator(self):
        ds = grain.MapDataset.range(len(self.records)).seed(self.config.seed).shuffle().repeat()
        return iter(ds.batch(self.prompts, drop_remainder=True).to_iter_dataset())

    def rollout(self, state, indices) -> Rollout:
        """G sampled completions of each record in `indices` under the state's policy, decoded and rewarded."""
        cfg = self.config
        rows = [self.records[int(i)] for i in indices for _ in range(self.group)]
        prompts = [self.prompt_fn(r) for r in rows]
        ids = np.full((len(rows), self.prompt_len), self.tokenizer.pad_id, np.int32)
        mask = np.zeros_like(ids)
        for k, p in enumerate(prompts):
            ids[k, self.prompt_len - len(p):], mask[k, self.prompt_len - len(p):] = p, 1
        step = int(jax.device_get(state.step))
        rng = jax.random.fold_in(jax.random.key(cfg.seed), step)
        with jax.set_mesh(self.trainer.mesh):
            out = gen_lib.generate(self.trainer.model(state), ids, self.sampling, attention_mask_BS=mask, rng=rng)
        tokens, counts = np.asarray(out.tokens_BN), np.asarray(out.num_tokens_B)
        completions = [list(tokens[k, :counts[k]]) for k in range(len(rows))]
        texts = [self.tokenizer.decode([t for t in c if t != self.tokenizer.eos_id]) for c in completions]
        rewards, accurate, valid = self.reward_fn(rows, texts)
        return Rollout(prompts, completions, texts, np.asarray(rewards, np.float32), np.asarray(accurate),
                       np.asarray(valid))

    def device_batch(self, rollout: Rollout) -> dict:
        """The rollout's rows on the mesh, with advantages (the GRPO keys' log-probabilities still zero)."""
        adv = group_advantages(rollout.rewards, self.group)
        return train_lib.put_batch(self.trainer, self._batch(rollout.prompts, rollout.completions, adv))

    def update(self, state, rollout: Rollout):
        """One GRPO update on a rollout (old = the state's policy, ref = the starting policy)."""
        put = self.device_batch(rollout)
        with jax.set_mesh(self.trainer.mesh):
            put["old_logprobs"] = self.logprobs(state.params, state.puzzle_emb, state.buffers, put)
            put["ref_logprobs"] = self.logprobs(*self.ref, put)
            state, m = self.trainer.train_step(state, put)
        return state, jax.device_get(m)

    def step(self, state, indices) -> tuple[Any, dict]:
        ro = self.rollout(state, indices)
        state, m = self.update(state, ro)
        return state, {"srl/reward": float(ro.rewards.mean()), "srl/accuracy": float(ro.accurate.mean()),
                       "srl/valid": float(ro.valid.mean()), "srl/kl": float(m["kl"]),
                       "srl/pg_loss": float(m["pg_loss"]),
                       "srl/clip_fraction": float(m["clip_fraction"]),
                       "srl/completion_tokens": float(np.mean([len(c) for c in ro.completions])),
                       "train/loss": float(m["loss"]), "train/grad_norm": float(m["grad_norm"])}

    def _batch(self, prompts, completions, adv) -> dict[str, np.ndarray]:
        b, s = len(prompts), self.seq_len
        out = {k: np.zeros((b, s), np.int32) for k in families.CODE_KEYS}
        out["inputs"][:] = self.tokenizer.pad_id
        for k, (p, c) in enumerate(zip(prompts, completions)):
            row = (list(p) + list(c))[:s]
            n = len(row)
            out["inputs"][k, :n] = row
            out["segment_ids"][k, :n] = 1
            out["positions"][k, :n] = np.arange(n)
            out["loss_mask"][k, len(p):n] = 1
        out["targets"] = out["inputs"].copy()
        out["advantages"] = np.repeat(adv[:, None], s, axis=1).astype(np.float32)
        for key in ("old_logprobs", "ref_logprobs"):  # filled on device
            out[key] = np.zeros((b, s), np.float32)
        return out


def _defaults_from_stage1(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The tokenizer and codemod data of the Stage 1 run in `init_from` unless given."""
    config = ml_collections.ConfigDict(config.to_dict())
    if not config.init_from:
        raise ValueError("config.init_from: the SRL trainer starts from a Stage 1 (edit_actions) run's workdir")
    if not config.data.tokenizer:
        config.data.tokenizer = os.path.join(config.init_from, "tokenizer", "code.model")
    if not config.data.edits_path:
        config.data.edits_path = os.path.join(config.init_from, "codemods")
    return config


def build(config: ml_collections.ConfigDict, workdir: str, records=None, reward_fn: RewardFn = action_reward_fn,
          tokenizer=None):
    """(SrlLoop, CheckpointManager, fingerprint) for a config; `records` default to the train split of the Stage 1
    run's codemods that fit (prompt + srl.max_new_tokens <= data.seq_len)."""
    from input_pipeline import edit_prompts  # noqa: PLC0415
    from input_pipeline import tokenizer as tok_lib  # noqa: PLC0415
    from input_pipeline.codemods.records import read_split  # noqa: PLC0415

    s = config.srl
    if jax.process_count() > 1:  # each host would sample and reward the whole global batch
        raise NotImplementedError(f"--config.mode=srl runs on one process (this run has {jax.process_count()}); "
                                  "multi-host rollouts are not implemented yet")
    if config.data.global_batch_size != s.prompts_per_step * s.group_size:
        raise ValueError(f"config.data.global_batch_size must be srl.prompts_per_step x srl.group_size = "
                         f"{s.prompts_per_step * s.group_size}, got {config.data.global_batch_size}")
    tokenizer = tokenizer or tok_lib.load_tokenizer(config.data.tokenizer)
    if records is None:
        records = read_split(config.data.edits_path, "train")
        records = [r for r in edit_prompts.fitting(records, tokenizer, "edit_actions", config.data.seq_len)
                   if len(edit_prompts.prompt_ids(r, tokenizer)) + s.max_new_tokens <= config.data.seq_len]
    if len(records) < s.prompts_per_step:
        raise ValueError(f"only {len(records)} codemod records fit data.seq_len={config.data.seq_len} with "
                         f"srl.max_new_tokens={s.max_new_tokens}; need at least srl.prompts_per_step")
    spec = data_lib.DataSpec(vocab_size=tokenizer.vocab_size, seq_len=config.data.seq_len,
                             pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id,
                             eos_token_id=tokenizer.eos_id, tokenizer_fingerprint=tokenizer.fingerprint())
    if config.optim.grad_accum_steps != 1:  # its metrics are means, which micro-batch sums would scale
        raise ValueError(f"config.optim.grad_accum_steps={config.optim.grad_accum_steps}: the SRL trainer "
                         "needs 1 (its kl / pg_loss / clip_fraction metrics are per-batch means)")
    family = GrpoFamily(families.build_family(config, spec.as_dict()), s.clip_eps, s.kl_coef)
    trainer = train_lib.Trainer(config, family, spec.seq_len, parallel.make_mesh(config.mesh.shape))
    loop = SrlLoop(config, trainer, tokenizer, records, lambda r: edit_prompts.prompt_ids(r, tokenizer), reward_fn)
    manager = ckpt_lib.CheckpointManager.for_run(workdir, config)
    return loop, manager, ckpt_lib.run_fingerprint(config, family, spec.as_dict())


def run(loop: SrlLoop, manager, fingerprint: dict, workdir: str, steps: int | None = None):
    """Resume-or-init (the reference = init_from's parameters), then SRL steps to `train.steps` (or `steps`),
    checkpointing every `train.checkpoint_every` and at the end. Returns (state, metrics of each step run)."""
    config, trainer = loop.config, loop.trainer
    prompt_iter = loop.prompt_iterator()
    total = steps or config.train.steps
    try:
        state = resume.restore_or_init(manager, trainer, prompt_iter, fingerprint)
        if config.init_from:
            ref = resume.init_from(config.init_from, trainer, trainer.init_state())
        else:  # tests: the fresh initialisation (seeded) is the reference
            ref = trainer.init_state()
        loop.ref = (ref.params, ref.puzzle_emb, ref.buffers)
        start = int(jax.device_get(state.step))
        writer = metrics_lib.MetricWriter(workdir, enabled=jax.process_index() == 0, resume_step=start)
        say(f"SRL: {trainer.family.name}, {len(loop.records)} teacher states, {loop.prompts} x G={loop.group} "
            f"samples a step; {'start' if start == 0 else 'resume'} at step {start} of {total}")
        history = []
        for step in range(start + 1, total + 1):
            state, m = loop.step(state, next(prompt_iter))
            history.append(m)
            writer.write_scalars(step, m)
            if step % config.train.log_every == 0 or step == total:
                say(f"SRL step {step}/{total}  reward {m['srl/reward']:.3f}  accuracy {m['srl/accuracy']:.3f}  "
                    f"valid {m['srl/valid']:.2f}  kl {m['srl/kl']:.4f}")
            if (config.train.checkpoint_every and step % config.train.checkpoint_every == 0) or step == total:
                manager.save(step, state, prompt_iter, ckpt_lib.meta_for(config, fingerprint, step), force=True)
        manager.wait()
        writer.close()
        return state, history
    finally:
        manager.close()


def train_srl(config: ml_collections.ConfigDict, workdir: str):
    config = _defaults_from_stage1(config)
    logging.info("SRL from %s (tokenizer %s, codemods %s)", config.init_from, config.data.tokenizer,
                 config.data.edits_path)
    loop, manager, fingerprint = build(config, workdir)
    metrics_lib.MetricWriter(workdir, enabled=jax.process_index() == 0).write_config(config)
    return run(loop, manager, fingerprint, workdir)[0]
