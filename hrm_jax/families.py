"""Model families as the train loop sees them: how to build the model, what a batch holds, the carry, the loss.

One train step, eval step and checkpoint path serve every family (`train.py`); a family only answers these
questions. Families:
  * `hrm`: the original HRM with ACT (one segment per train step, the carry in the train state). Puzzle batches
    (inputs, labels, puzzle_identifiers) as the original; code batches (inputs, targets, segment_ids, positions,
    loss_mask) train it as a causal LM with next-token labels, each example for exactly the generation segment
    count (ACT halting only with `model.hrm.causal_act_halting`, which is not causal).
  * `hrm_text`: HRM-Text (transformers' hrm_text), a causal LM without ACT; code batches only.
  * `trm`: TRM (TinyRecursiveModels), the HRM family's batches, carry, ACT step and losses with TRM's model and
    halting (q_halt > 0, no second forward); causal on code batches.
  * `transformer`: the same-size baseline (`model/transformer.py`): on puzzles TRM's transformer baseline through
    the same ACT step and loss head as HRM; on code a llama-shaped causal LM with HRM-Text's loss.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from absl import logging

from hrm_jax import config as config_lib, losses, sizing, test_time as test_time_lib
from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, HRMConfig
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig, bp_warmup_depth, num_params as hrm_text_num_params
from hrm_jax.model import trm
from hrm_jax.model.transformer import Transformer, TransformerConfig, num_params as transformer_num_params

@runtime_checkable
class Family(Protocol):
    """What the train step, the eval loop, checkpoints and restore need from a model family."""

    name: str
    model_config: Any  # a frozen dataclass: stored in the checkpoint fingerprint

    @property
    def batch_keys(self) -> tuple[str, ...]: ...
    def build(self, rngs: nnx.Rngs) -> nnx.Module: ...
    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]: ...
    def initial_carry(self, model, model_batch: dict[str, jax.Array]) -> Any: ...
    def train_loss(self, model, carry, batch, rng, draws=None, step=None) -> tuple[jax.Array, Any, dict]: ...
    def train_draws(self, rng, batch_size: int) -> Any: ...
    def puzzle_ids(self, carry) -> jax.Array | None: ...
    def eval_metrics(self, model, batch) -> dict[str, jax.Array]: ...
    def num_params(self) -> int: ...
    def flops_per_token(self) -> float: ...


PUZZLE_KEYS = ("inputs", "labels", "puzzle_identifiers")
CODE_KEYS = ("inputs", "targets", "segment_ids", "positions", "loss_mask")


# Per-token float inputs of a loss (the SRL trainer's GRPO batch, hrm_jax/srl.py); every other key is int32.
FLOAT_KEYS = ("advantages", "old_logprobs", "ref_logprobs")


def example_batch(keys: tuple[str, ...], global_batch: int, seq_len: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct((global_batch,) if k == "puzzle_identifiers" else (global_batch, seq_len),
                                    jnp.float32 if k in FLOAT_KEYS else jnp.int32) for k in keys}


def _token_metrics(logits, labels, inputs=None):
    """Token sums. Without `inputs` (causal code HRM/TRM), also the summed cross-entropy (eval/loss, as HRM-Text
    and the transformer report it); with puzzle `inputs`, also over the cells to fill in (label != input: Sudoku's
    blanks, a maze's path), which the headline cell accuracy dilutes with the copied givens (`fill_accuracy`)."""
    mask = labels != losses.IGNORE_LABEL_ID
    correct = mask & (jnp.argmax(logits, -1) == labels)
    out = {"tokens": mask.sum(), "correct_tokens": correct.sum()}
    if inputs is None:  # a causal LM's held-out loss (eval/loss, nats per token)
        out["loss_sum"] = losses.softmax_cross_entropy(logits, labels).sum()
    else:
        fill = mask & (labels != inputs)
        out |= {"fill_cells": fill.sum(), "correct_fill_cells": (fill & correct).sum()}
    return out


@dataclasses.dataclass(frozen=True)
class HRMFamily:
    """The original HRM (puzzle or causal-code batches)."""

    model_config: HRMConfig
    loss_type: str
    code: bool  # batches are packed code (CODE_KEYS) rather than puzzles (PUZZLE_KEYS)
    eval_adaptive: bool = False
    # Causal models train with ACT halting only when asked (config.model.hrm.causal_act_halting): the Q head reads
    # the last position, so halting (and the carry reset) would depend on later tokens -- not causal.
    causal_act_halting: bool = False
    # Test-time compute for puzzle evaluation (hrm_jax.test_time; config.eval.test_time): None = the plain eval.
    test_time: test_time_lib.TestTimeSettings | None = None
    loop_cycles: bool = False  # gradient-free cycles as one lax.fori_loop (config.model.hrm/trm.loop_cycles)

    name = "hrm"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return CODE_KEYS if self.code else PUZZLE_KEYS

    def build(self, rngs: nnx.Rngs) -> HRM:
        return HRM(self.model_config, loop_cycles=self.loop_cycles, rngs=rngs)

    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """What the model's ACT data slots hold: code batches get next-token labels within segments."""
        if not self.code:
            return dict(batch)
        labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
        return {"inputs": batch["inputs"], "labels": labels, "segment_ids": batch["segment_ids"],
                "positions": batch["positions"]}

    def initial_carry(self, model: HRM, model_batch: dict[str, jax.Array]):
        return act.initial_carry(model, model_batch)

    @property
    def fixed_train_segments(self) -> int | None:
        """Segments per example in training when halting is not learned: the causal model's generation segment
        count (so training and generation run the same number); None = ACT halting (puzzles, or the flag)."""
        if self.model_config.causal and not self.causal_act_halting:
            return self.model_config.num_generation_segments
        return None

    def train_draws(self, rng, batch_size: int) -> act.ExplorationDraws:
        """The per-row randomness of one train step (gradient accumulation splits it like the rows)."""
        return act.exploration_draws(rng, batch_size, self.model_config.halt_max_steps)

    def train_segment(self, model: HRM, carry, data, rng, draws=None):
        """One training ACT segment over model-batch `data` -> (new carry, outputs); `draws` (rows of
        `train_draws`) else drawn from `rng` for these rows."""
        if draws is None:
            draws = self.train_draws(rng, data["inputs"].shape[0])
        return act.act_step(model, carry, data, training=True, draws=draws, fixed_segments=self.fixed_train_segments)

    def train_loss(self, model: HRM, carry, batch, rng, draws=None, step=None) -> tuple[jax.Array, Any, dict]:
        """(sum of the per-example losses, new carry, metric sums), as the original's ACTLossHead."""
        del step
        data = self.model_batch(batch)
        carry, outputs = self.train_segment(model, carry, data, rng, draws)
        total, m = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, self.loss_type)
        return total, carry, m

    def puzzle_ids(self, carry) -> jax.Array | None:
        """The puzzle identifiers the carry's slots worked on (the rows SignSGD may touch)."""
        return None if self.code else carry.current_data["puzzle_identifiers"]

    def eval_metrics(self, model: HRM, batch) -> dict[str, jax.Array]:
        data = self.model_batch(batch)
        if self.test_time is not None:
            if self.code:
                raise ValueError("test-time settings (eval.test_time) apply to puzzle evaluation; causal code models "
                                 "take model.generation_segments at decode time")
            return test_time_lib.metrics(model, data, self.test_time, adaptive=self.eval_adaptive,
                                         loss_type=self.loss_type)
        outputs, steps = act.act_infer(model, data, adaptive=self.eval_adaptive, max_steps=self.fixed_train_segments)
        _, m = losses.act_loss(outputs, data["labels"], jnp.ones(steps.shape, bool), steps, self.loss_type)
        out = {k: m[k] for k in ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")}
        return out | _token_metrics(outputs["logits"], data["labels"], None if self.code else data["inputs"])

    def num_params(self) -> int:
        abstract = nnx.eval_shape(lambda: HRM(self.model_config, rngs=nnx.Rngs(0)))
        return int(sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))

    def flops_per_token(self) -> float:
        from hrm_jax.metrics import hrm_train_flops  # noqa: PLC0415
        mc = self.model_config
        if self.fixed_train_segments is not None:  # no second forward for a Q target
            mc = mc.replace(halt_max_steps=1)
        return hrm_train_flops(mc, 1) / mc.total_len

    def segment_flops_per_token(self) -> float:
        """Forward FLOPs of one inference segment per token: every L and H call, lm_head and q_head."""
        from hrm_jax.metrics import hrm_block_flops_per_token  # noqa: PLC0415
        mc = self.model_config
        block = hrm_block_flops_per_token(mc)
        calls = mc.H_cycles * mc.L_cycles * mc.L_layers + mc.H_cycles * mc.H_layers
        return calls * block + 2 * mc.hidden_size * (mc.vocab_size + 2)


def prompt_token_types(batch) -> jax.Array:
    """HRM-Text `token_type_ids` [B, S] of packed code rows: 1 on each segment's prompt (its tokens that are no
    target, loss_mask 0: an MBPP prompt), 0 on targets and padding. A corpus document (every token a target) has
    no prompt; the attention mask's segment term keeps every prompt block within its own segment."""
    return ((batch["loss_mask"] == 0) & (batch["segment_ids"] > 0)).astype(jnp.int32)


def _causal_token_losses(model, batch, chunked: bool = True, bp_depth=None):
    """(per-token loss [B, S], argmax == label [B, S], labels [B, S]) of a causal LM on packed code rows.
    `chunked` (and a model with `segment_hidden_states`): cross-entropy over sequence chunks
    (`losses.chunked_softmax_cross_entropy`), never the whole [B, S, V] logits; else the full-logits form (kept
    for benchmarks/train_memory.py's before/after comparison). Same values."""
    labels = losses.causal_lm_labels(batch["targets"], batch["loss_mask"], batch["segment_ids"])
    rows = (batch["inputs"], batch["segment_ids"], batch["positions"])
    if getattr(getattr(model, "config", None), "prefix_lm", False):  # HRM-Text's prefix-LM: prompts bidirectional
        rows += (prompt_token_types(batch),)
    depth = {} if bp_depth is None else {"bp_depth": bp_depth}  # HRM-Text's backprop-depth warm-up
    if chunked and hasattr(model, "segment_hidden_states"):
        hidden = model.segment_hidden_states(*rows, **depth)
        per_token, correct = losses.chunked_softmax_cross_entropy(hidden, model.logits, labels)
        return per_token, correct, labels
    logits = model.segment_logits(*rows, **depth)
    valid = labels != losses.IGNORE_LABEL_ID
    return losses.softmax_cross_entropy(logits, labels), valid & (jnp.argmax(logits, -1) == labels), labels


def causal_lm_train_loss(model, batch, chunked: bool = True, bp_depth=None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Next-token loss of a causal LM on packed code rows, per-example sums like the HRM family: each row's mean
    token loss, summed over rows (rows without counted tokens add 0), so `total / global_batch` is a
    per-example mean."""
    per_token, correct, labels = _causal_token_losses(model, batch, chunked, bp_depth)
    counts = (labels != losses.IGNORE_LABEL_ID).sum(-1)
    total = (per_token.sum(-1) / jnp.maximum(counts, 1)).sum()
    return total, {"tokens": counts.sum(), "correct_tokens": correct.sum(), "lm_loss": total,
                   "count": (counts > 0).sum()}


def causal_lm_eval_metrics(model, batch, chunked: bool = True) -> dict[str, jax.Array]:
    per_token, correct, labels = _causal_token_losses(model, batch, chunked)
    return {"tokens": (labels != losses.IGNORE_LABEL_ID).sum(), "correct_tokens": correct.sum(),
            "loss_sum": per_token.sum()}


@dataclasses.dataclass(frozen=True)
class TRMFamily(HRMFamily):
    """TRM (puzzle or causal-code batches): HRM's data, carry, ACT step and loss head; the halting rule follows
    the config's `no_ACT_continue` (`act.wants_halt`)."""

    model_config: trm.TRMConfig

    name = "trm"

    def build(self, rngs: nnx.Rngs) -> trm.TRM:
        return trm.TRM(self.model_config, loop_cycles=self.loop_cycles, rngs=rngs)

    def num_params(self) -> int:
        return trm.num_params(self.model_config)

    def flops_per_token(self) -> float:
        return trm.train_flops(self.model_config, 1) / self.model_config.total_len

    def segment_flops_per_token(self) -> float:
        """Forward FLOPs of one inference segment per token: T x (n + 1) network applications, lm_head, q_head."""
        mc = self.model_config
        net = mc.L_layers * trm.block_flops_per_token(mc)
        return mc.H_cycles * (mc.L_cycles + 1) * net + 2 * mc.hidden_size * (mc.vocab_size + 2)


@dataclasses.dataclass(frozen=True)
class HrmTextFamily:
    """HRM-Text: a causal LM; the loss is the mean next-token cross-entropy over the batch's counted tokens."""

    model_config: HrmTextConfig
    dtype: Any = jnp.float32
    init: str = "authors"
    attention_impl: str | None = None
    remat: bool = False  # per-block rematerialization (config.model.hrm_text.remat)
    remat_policy: str = "nothing_saveable"  # what a rematerialized block keeps (config.model.hrm_text.remat_policy)
    loop_cycles: bool = False  # cycles as compiled loops (config.model.hrm_text.loop_cycles)
    remat_cycles: bool = False  # per-H-cycle rematerialization (config.model.hrm_text.remat_cycles)
    scan_layers: bool = False  # each stack's blocks as one lax.scan (config.model.hrm_text.scan_layers)
    chunked_loss: bool = True  # cross-entropy over sequence chunks, never the whole [B, S, V] logits
    # The authors' backprop-depth warm-up (model.hrm_text.bp_warmup_ratio; 0 = off): gradient depth
    # bp_min_steps .. max_bp_depth over the first ratio x total_steps steps (hrm_text.bp_warmup_depth).
    bp_warmup_ratio: float = 0.0
    bp_min_steps: int = 2
    total_steps: int = 0

    name = "hrm_text"
    batch_keys = CODE_KEYS

    def build(self, rngs: nnx.Rngs) -> HrmText:
        return HrmText(self.model_config, dtype=self.dtype, init=self.init, attention_impl=self.attention_impl,
                       remat=self.remat, remat_policy=self.remat_policy, loop_cycles=self.loop_cycles,
                       remat_cycles=self.remat_cycles, scan_layers=self.scan_layers, rngs=rngs)

    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return dict(batch)

    def initial_carry(self, model, model_batch):
        return {}

    def train_draws(self, rng, batch_size: int) -> None:
        return None

    def bp_depth(self, step):
        """The gradient depth at `step` (None = the static routing: warm-up off, or no step given)."""
        if not self.bp_warmup_ratio or step is None:
            return None
        return bp_warmup_depth(step, self.total_steps, self.bp_warmup_ratio, self.bp_min_steps,
                               self.model_config.max_bp_depth)

    def train_loss(self, model: HrmText, carry, batch, rng, draws=None, step=None):
        del rng, draws
        total, m = causal_lm_train_loss(model, batch, chunked=self.chunked_loss, bp_depth=self.bp_depth(step))
        return total, carry, m

    def puzzle_ids(self, carry):
        return None

    def eval_metrics(self, model: HrmText, batch):
        return causal_lm_eval_metrics(model, batch, chunked=self.chunked_loss)

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


@dataclasses.dataclass(frozen=True)
class TransformerFamily:
    """The transformer baseline. Puzzle batches: TRM's baseline under HRM's ACT step and ACTLossHead (one segment
    when halt_max_steps is 1). Code batches: the causal LM's next-token loss, as HRM-Text."""

    model_config: TransformerConfig
    loss_type: str
    eval_adaptive: bool = False
    description: str = ""  # the sizing line printed at start

    name = "transformer"

    @property
    def code(self) -> bool:
        return self.model_config.causal

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return CODE_KEYS if self.code else PUZZLE_KEYS

    def build(self, rngs: nnx.Rngs) -> Transformer:
        return Transformer(self.model_config, rngs=rngs)

    def model_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return dict(batch)

    def initial_carry(self, model: Transformer, model_batch: dict[str, jax.Array]):
        return {} if self.code else act.initial_carry(model, model_batch)

    def train_draws(self, rng, batch_size: int) -> act.ExplorationDraws | None:
        return None if self.code else act.exploration_draws(rng, batch_size, self.model_config.halt_max_steps)

    def train_loss(self, model: Transformer, carry, batch, rng, draws=None, step=None):
        del step
        if self.code:
            total, m = causal_lm_train_loss(model, batch)
            return total, carry, m
        if draws is None:
            draws = self.train_draws(rng, batch["inputs"].shape[0])
        carry, outputs = act.act_step(model, carry, batch, training=True, draws=draws)
        total, m = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, self.loss_type)
        return total, carry, m

    def puzzle_ids(self, carry) -> jax.Array | None:
        return None if self.code else carry.current_data["puzzle_identifiers"]

    def eval_metrics(self, model: Transformer, batch) -> dict[str, jax.Array]:
        if self.code:
            return causal_lm_eval_metrics(model, batch)
        outputs, steps = act.act_infer(model, batch, adaptive=self.eval_adaptive)
        _, m = losses.act_loss(outputs, batch["labels"], jnp.ones(steps.shape, bool), steps, self.loss_type)
        out = {k: m[k] for k in ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")}
        return out | _token_metrics(outputs["logits"], batch["labels"], batch["inputs"])

    def num_params(self) -> int:
        return transformer_num_params(self.model_config)

    def flops_per_token(self) -> float:
        """Train-step FLOPs per token: forward + backward (3x forward), plus the Q target's second forward when
        ACT trains (puzzles, halt_max_steps > 1)."""
        forward = sizing.transformer_forward_flops_per_token(self.model_config)
        second = forward if not self.code and self.model_config.halt_max_steps > 1 else 0.0
        return 3.0 * forward + second


def _test_time(config: ml_collections.ConfigDict, code: bool) -> test_time_lib.TestTimeSettings | None:
    """config.eval.test_time as settings for puzzle runs; None when it asks for the plain evaluation."""
    if code or "test_time" not in config.eval:
        return None
    settings = test_time_lib.from_config(config.eval.test_time)
    return None if settings.is_plain else settings


def with_test_time(family, settings: test_time_lib.TestTimeSettings | None):
    """The family evaluating with test-time `settings` (a recursive puzzle family only)."""
    if not hasattr(family, "test_time") or getattr(family, "code", True):
        raise ValueError(f"test-time settings need a recursive puzzle family (hrm, trm), got {family.name!r}")
    return dataclasses.replace(family, test_time=settings)


def build_family(config: ml_collections.ConfigDict, data_meta: dict):
    """The chosen family from its `model.<family>` node and the shared `model.*` fields."""
    code = config.data.kind in config_lib.CODE_DATA_KINDS
    if config.model.family not in config_lib.FAMILIES:
        raise ValueError(f"config.model.family: {config.model.family!r} is not one of {config_lib.FAMILIES}")
    loss_type = config_lib.loss_type(config)
    if config.model.family == "transformer":
        model_config, reference = config_lib.transformer_config(config, data_meta)
        by = None if config.model.transformer.num_layers else config.model.transformer.size_by
        description = sizing.describe(model_config, reference, by)
        logging.info("%s", description)
        return TransformerFamily(model_config, loss_type, eval_adaptive=config.eval.adaptive,
                                 description=description)
    if config.model.family == "hrm":
        return HRMFamily(config_lib.hrm_config(config, data_meta), loss_type, code=code,
                         eval_adaptive=config.eval.adaptive, causal_act_halting=config.model.hrm.causal_act_halting,
                         test_time=_test_time(config, code), loop_cycles=bool(config.model.hrm.loop_cycles))
    if config.model.family == "trm":
        return TRMFamily(config_lib.trm_config(config, data_meta), loss_type, code=code,
                         eval_adaptive=config.eval.adaptive, test_time=_test_time(config, code),
                         loop_cycles=bool(config.model.trm.loop_cycles))
    node = config.model.hrm_text
    return HrmTextFamily(config_lib.hrm_text_config(config, data_meta), dtype=jnp.dtype(config.model.forward_dtype),
                         init=node.init, attention_impl=config.model.attention_impl or None, remat=bool(node.remat),
                         remat_policy=node.remat_policy, loop_cycles=bool(node.loop_cycles),
                         remat_cycles=bool(node.remat_cycles), scan_layers=bool(node.scan_layers),
                         bp_warmup_ratio=float(node.bp_warmup_ratio),
                         bp_min_steps=int(node.bp_min_steps), total_steps=int(config.train.steps))
