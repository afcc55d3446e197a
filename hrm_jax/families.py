"""Model families as the train loop sees them: how to build the model, what a batch holds, the carry, the loss.

One train step, eval step and checkpoint path serve every family (`train.py`); a family only answers these
questions. Families:
  * `hrm`: the original HRM with ACT (one segment per train step, the carry in the train state). Puzzle batches
    (inputs, labels, puzzle_identifiers) as the original; code batches (inputs, targets, segment_ids, positions,
    loss_mask) train it as a causal LM with next-token labels.
  * `hrm_text`: HRM-Text (transformers' hrm_text), a causal LM without ACT; code batches only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from hrm_jax import config as config_lib, losses
from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, HRMConfig
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig, num_params as hrm_text_num_params

PUZZLE_KEYS = ("inputs", "labels", "puzzle_identifiers")
CODE_KEYS = ("inputs", "targets", "segment_ids", "positions", "loss_mask")


def example_batch(keys: tuple[str, ...], global_batch: int, seq_len: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct((global_batch,) if k == "puzzle_identifiers" else (global_batch, seq_len),
                                    jnp.int32) for k in keys}


def _token_metrics(logits, labels):
    mask = labels != losses.IGNORE_LABEL_ID
    correct = mask & (jnp.argmax(logits, -1) == labels)
    return {"tokens": mask.sum(), "correct_tokens": correct.sum()}


@dataclasses.dataclass(frozen=True)
class HRMFamily:
    """The original HRM (puzzle or causal-code batches)."""

    model_config: HRMConfig
    loss_type: str
    code: bool  # batches are packed code (CODE_KEYS) rather than puzzles (PUZZLE_KEYS)
    eval_adaptive: bool = False

    name = "hrm"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return CODE_KEYS if self.code else PUZZLE_KEYS

    def build(self, rngs: nnx.Rngs) -> HRM:
        return HRM(self.model_config, rngs=rngs)

    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """What the model's ACT data slots hold: code batches get next-token labels within segments."""
        if not self.code:
            return dict(batch)
        labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
        return {"inputs": batch["inputs"], "labels": labels, "segment_ids": batch["segment_ids"],
                "positions": batch["positions"]}

    def initial_carry(self, model: HRM, model_batch: dict[str, jax.Array]):
        return act.initial_carry(model, model_batch)

    def train_loss(self, model: HRM, carry, batch, rng) -> tuple[jax.Array, Any, dict[str, jax.Array]]:
        """(sum of the per-example losses, new carry, metric sums), as the original's ACTLossHead."""
        data = self.model_batch(batch)
        draws = act.exploration_draws(rng, data["inputs"].shape[0], self.model_config.halt_max_steps)
        carry, outputs = act.act_step(model, carry, data, training=True, draws=draws)
        total, m = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, self.loss_type)
        return total, carry, m

    def puzzle_ids(self, carry) -> jax.Array | None:
        """The puzzle identifiers the carry's slots worked on (the rows SignSGD may touch)."""
        return None if self.code else carry.current_data["puzzle_identifiers"]

    def eval_metrics(self, model: HRM, batch) -> dict[str, jax.Array]:
        data = self.model_batch(batch)
        outputs, steps = act.act_infer(model, data, adaptive=self.eval_adaptive)
        _, m = losses.act_loss(outputs, data["labels"], jnp.ones(steps.shape, bool), steps, self.loss_type)
        out = {k: m[k] for k in ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")}
        return out | _token_metrics(outputs["logits"], data["labels"])

    def num_params(self) -> int:
        abstract = nnx.eval_shape(lambda: HRM(self.model_config, rngs=nnx.Rngs(0)))
        return int(sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))

    def flops_per_token(self) -> float:
        from hrm_jax.metrics import hrm_train_flops  # noqa: PLC0415
        return hrm_train_flops(self.model_config, 1) / self.model_config.total_len


@dataclasses.dataclass(frozen=True)
class HrmTextFamily:
    """HRM-Text: a causal LM; the loss is the mean next-token cross-entropy over the batch's counted tokens."""

    model_config: HrmTextConfig
    dtype: Any = jnp.float32
    init: str = "authors"
    attention_impl: str | None = None
    remat: bool = False  # per-block rematerialization (config.model.remat)
    chunked_loss: bool = True  # cross-entropy over sequence chunks, never the whole [B, S, V] logits

    name = "hrm_text"
    batch_keys = CODE_KEYS

    def build(self, rngs: nnx.Rngs) -> HrmText:
        return HrmText(self.model_config, dtype=self.dtype, init=self.init, attention_impl=self.attention_impl,
                       remat=self.remat, rngs=rngs)

    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return dict(batch)

    def initial_carry(self, model, model_batch):
        return {}

    def _token_losses(self, model: HrmText, batch):
        """(per-token loss [B, S], argmax == label [B, S], labels [B, S]); chunked unless `chunked_loss=False`
        (the full-logits form, kept for benchmarks/train_memory.py's before/after comparison)."""
        labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
        if not self.chunked_loss:
            logits = model.segment_logits(batch["inputs"], batch["segment_ids"], batch["positions"])
            valid = labels != losses.IGNORE_LABEL_ID
            return (losses.softmax_cross_entropy(logits, labels), valid & (jnp.argmax(logits, -1) == labels),
                    labels)
        hidden = model.segment_hidden_states(batch["inputs"], batch["segment_ids"], batch["positions"])
        per_token, correct = losses.chunked_softmax_cross_entropy(hidden, model.logits, labels)
        return per_token, correct, labels

    def train_loss(self, model: HrmText, carry, batch, rng):
        """Per-example sums like the HRM family: each row's mean token loss, summed over rows (rows without
        counted tokens add 0), so `total / global_batch` is a per-example mean."""
        del rng
        per_token, correct, labels = self._token_losses(model, batch)
        counts = (labels != losses.IGNORE_LABEL_ID).sum(-1)
        total = (per_token.sum(-1) / jnp.maximum(counts, 1)).sum()
        m = {"tokens": counts.sum(), "correct_tokens": correct.sum(), "lm_loss": total, "count": (counts > 0).sum()}
        return total, carry, m

    def puzzle_ids(self, carry):
        return None

    def eval_metrics(self, model: HrmText, batch):
        per_token, correct, labels = self._token_losses(model, batch)
        return {"tokens": (labels != losses.IGNORE_LABEL_ID).sum(), "correct_tokens": correct.sum(),
                "loss_sum": per_token.sum()}

    def num_params(self) -> int:
        return hrm_text_num_params(self.model_config)

    def flops_per_token(self) -> float:
        """6 x (block params per token-call) per gradient call, 2x for no-gradient L calls, plus attention."""
        c = self.model_config
        d, i, n = c.hidden_size, c.intermediate_size, c.num_attention_heads * c.head_dim
        block = 2 * (4 * d * n + d * n + 3 * d * i)
        calls = c.num_layers_per_stack
        grad_l = sum(min(k, c.L_cycles) for k in c.L_bp_cycles_padded[:c.H_cycles])
        no_grad_l = c.H_cycles * c.L_cycles - grad_l
        return calls * block * (no_grad_l + 3 * (grad_l + c.H_cycles)) + 3 * 2 * d * c.vocab_size


def build_family(config: ml_collections.ConfigDict, data_meta: dict):
    code = config.data.kind in config_lib.CODE_DATA_KINDS
    if config.model.family == "hrm":
        return HRMFamily(config_lib.hrm_config(config, data_meta), config.model.loss_type, code=code,
                         eval_adaptive=config.eval.adaptive)
    return HrmTextFamily(config_lib.hrm_text_config(config, data_meta), dtype=jnp.dtype(config.model.forward_dtype),
                         init=config.model.hrm_text_init, attention_impl=config.model.attention_impl or None,
                         remat=bool(config.model.remat))

