"""Test-time scaling for the recursive puzzle families (HRM, TRM): more compute at evaluation on the same weights.

Knobs (`TestTimeSettings`, the config's `eval.test_time` node):
  * segments: an absolute segment budget, or a multiple of the model's halt_max_steps (deeper recursion).
  * adaptive halting stays the family's `eval_adaptive` (`eval.adaptive`): each trajectory halts on its own Q head
    inside the one `jax.lax.while_loop` (`act.act_infer`), frozen from then on; the loop exits when all have.
  * noise: Gaussian noise of std `noise_scale` added to z_H / z_L after every module call of a segment
    (`noise_per="step"`, each recursion step) or to the carry before every segment (`"segment"`).
  * K parallel trajectories per puzzle, run as one batch of K x B rows; one is selected per puzzle by the highest
    q_halt, or by majority vote over the trajectories' answers (ties: highest q_halt). The oracle (any trajectory
    exactly right; the best cell accuracy) is an upper bound, always reported under `oracle_*`.

Noise keys depend only on (seed, the puzzle's content -- its input tokens and puzzle identifier --, trajectory
index, the trajectory's own segment index, call index), never on batch size, batch position or device count, so a
result is reproducible whatever the batching. With noise_scale 0 nothing is added (no op is traced), and with K = 1
the numbers are bitwise the plain evaluation's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hrm_jax import losses
from hrm_jax.model import act

SELECTIONS = ("q_halt", "majority", "oracle")


def with_generation_segments(model, segments: int):
    """A causal HRM / TRM generating with `segments` segments per token (decode-time depth, `eval.
    generation_segments`): the same weights, a KV cache of that many segments' sites. 0 keeps the trained count."""
    if not segments:
        return model
    config = getattr(model, "config", None)
    if not getattr(config, "causal", False) or not hasattr(config, "generation_segments"):
        raise ValueError("eval.generation_segments applies to the causal HRM / TRM (code runs of model.family "
                         "'hrm' or 'trm')")
    model.config = config.replace(generation_segments=segments)
    return model
NOISE_PER = ("step", "segment")


@dataclasses.dataclass(frozen=True)
class TestTimeSettings:
    """Test-time compute of one evaluation (see the module docstring)."""

    __test__ = False  # not a pytest class

    segments: int = 0  # absolute segment budget; 0 = segments_multiple x halt_max_steps
    segments_multiple: int = 1
    noise_scale: float = 0.0  # std of the Gaussian noise on z_H / z_L
    noise_per: str = "step"  # "step": after every module call; "segment": on the carry before every segment
    trajectories: int = 1  # K trajectories per puzzle
    selection: str = "q_halt"  # the rule whose numbers are the headline metrics: q_halt | majority | oracle
    seed: int = 0

    def __post_init__(self):
        if self.segments < 0:
            raise ValueError(f"test_time.segments must be >= 0 (0 = segments_multiple x halt_max_steps), got "
                             f"{self.segments}")
        if self.segments_multiple < 1:
            raise ValueError(f"test_time.segments_multiple must be >= 1, got {self.segments_multiple}")
        if self.noise_scale < 0:
            raise ValueError(f"test_time.noise_scale must be >= 0, got {self.noise_scale}")
        if self.noise_per not in NOISE_PER:
            raise ValueError(f"test_time.noise_per must be one of {NOISE_PER}, got {self.noise_per!r}")
        if self.trajectories < 1:
            raise ValueError(f"test_time.trajectories must be >= 1, got {self.trajectories}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"test_time.selection must be one of {SELECTIONS}, got {self.selection!r}")

    def max_segments(self, halt_max_steps: int) -> int:
        return self.segments or self.segments_multiple * halt_max_steps

    @property
    def is_plain(self) -> bool:
        """True when this is the plain evaluation: halt_max_steps segments, no noise, one trajectory."""
        return (self.segments in (0,) and self.segments_multiple == 1 and self.noise_scale == 0
                and self.trajectories == 1)


def from_config(node) -> TestTimeSettings:
    """The config's `eval.test_time` node as settings."""
    return TestTimeSettings(**{f.name: node[f.name] for f in dataclasses.fields(TestTimeSettings) if f.name in node})


def puzzle_keys(seed: int, batch: dict[str, jax.Array], trajectories: int) -> jax.Array:
    """Random keys [B, K]: one per (puzzle, trajectory), from the seed and the puzzle's content only."""
    inputs = batch["inputs"].astype(jnp.uint32)
    weights = (jnp.arange(inputs.shape[1], dtype=jnp.uint32) * jnp.uint32(2654435761) + jnp.uint32(1))
    digest = (inputs * weights).sum(-1, dtype=jnp.uint32)  # wraps mod 2^32
    if "puzzle_identifiers" in batch:
        digest = digest * jnp.uint32(31) + batch["puzzle_identifiers"].astype(jnp.uint32)
    base = jax.random.key(seed)
    rows = jax.vmap(lambda d: jax.random.fold_in(base, d))(digest)
    return jax.vmap(lambda k: jax.vmap(lambda t: jax.random.fold_in(k, t))(jnp.arange(trajectories)))(rows)


@dataclasses.dataclass(frozen=True)
class Noise:
    """Per-row Gaussian perturbations for `act.act_infer`: keys [N] (one per trajectory row), scale, where."""

    keys_N: jax.Array
    scale: float
    per: str

    def _add(self, z_NSD: jax.Array, steps_N: jax.Array, call_index: int) -> jax.Array:
        def one(key, step):
            key = jax.random.fold_in(jax.random.fold_in(key, step), call_index)
            return jax.random.normal(key, z_NSD.shape[1:], jnp.float32)
        eps = jax.vmap(one)(self.keys_N, steps_N)
        return (z_NSD.astype(jnp.float32) + self.scale * eps).astype(z_NSD.dtype)

    def carry(self, inner, steps_N: jax.Array):
        """The carry a segment starts from (noised per segment; each row keyed by its own segment index)."""
        if self.per != "segment":
            return inner
        return inner.replace(z_H=self._add(inner.z_H, steps_N, 0), z_L=self._add(inner.z_L, steps_N, 1))

    def calls(self, steps_N: jax.Array):
        """`perturb(z, call_index)` for the model's segment (per recursion step), or None."""
        if self.per != "step":
            return None
        return lambda z, call_index: self._add(z, steps_N, call_index)


def run_trajectories(model, data: dict[str, jax.Array], settings: TestTimeSettings, *, adaptive: bool):
    """K trajectories per puzzle as one batch -> (outputs with a [B, K] leading shape, segments used [B, K])."""
    k = settings.trajectories
    batch_size = data["inputs"].shape[0]
    rows = data if k == 1 else {name: jnp.repeat(v, k, axis=0) for name, v in data.items()}
    noise = None
    if settings.noise_scale > 0:
        noise = Noise(puzzle_keys(settings.seed, data, k).reshape(-1), settings.noise_scale, settings.noise_per)
    outputs, steps = act.act_infer(model, rows, adaptive=adaptive,
                                   max_steps=settings.max_segments(model.config.halt_max_steps), noise=noise)
    unflat = jax.tree.map(lambda v: v.reshape((batch_size, k) + v.shape[1:]), outputs)
    return unflat, steps.reshape(batch_size, k)


def predictions(logits_BKSV: jax.Array) -> jax.Array:
    return jnp.argmax(logits_BKSV, axis=-1)


def select_q_halt(q_halt_BK: jax.Array) -> jax.Array:
    """[B] index of the trajectory whose Q head is most confident it is right (first on ties)."""
    return jnp.argmax(q_halt_BK, axis=-1)


def select_majority(preds_BKS: jax.Array, q_halt_BK: jax.Array) -> jax.Array:
    """[B] index of a trajectory whose whole answer most trajectories share; ties go to the highest q_halt."""
    agree_BKK = jnp.all(preds_BKS[:, :, None, :] == preds_BKS[:, None, :, :], axis=-1)
    votes_BK = agree_BKK.sum(-1)
    best = votes_BK == votes_BK.max(-1, keepdims=True)
    return jnp.argmax(jnp.where(best, q_halt_BK, -jnp.inf), axis=-1)


def select_oracle(preds_BKS: jax.Array, labels_BS: jax.Array) -> jax.Array:
    """[B] index of the trajectory with the most correct cells (an exactly right one when any is): an upper
    bound that reads the labels."""
    mask = labels_BS[:, None, :] != losses.IGNORE_LABEL_ID
    return jnp.argmax((mask & (preds_BKS == labels_BS[:, None, :])).sum(-1), axis=-1)


def _take(x_BK, index_B):
    return jnp.take_along_axis(x_BK, index_B.reshape((-1, 1) + (1,) * (x_BK.ndim - 2)), axis=1)[:, 0]


def selections(outputs, labels_BS: jax.Array) -> dict[str, jax.Array]:
    preds = predictions(outputs["logits"])
    q_halt = outputs["q_halt_logits"]
    return {"q_halt": select_q_halt(q_halt), "majority": select_majority(preds, q_halt),
            "oracle": select_oracle(preds, labels_BS)}


def metrics(model, data: dict[str, jax.Array], settings: TestTimeSettings, *, adaptive: bool,
            loss_type: str) -> dict[str, jax.Array]:
    """Metric sums over one batch: `run_trajectories`, then `score`."""
    outputs, steps_BK = run_trajectories(model, data, settings, adaptive=adaptive)
    return score(outputs, steps_BK, data["labels"], settings.selection, loss_type, data["inputs"])


def score(outputs, steps_BK: jax.Array, labels_BS: jax.Array, selection: str, loss_type: str,
          inputs_BS: jax.Array | None = None) -> dict[str, jax.Array]:
    """Metric sums of K trajectories per puzzle (outputs with a [B, K] leading shape). The headline keys (count,
    accuracy, exact_accuracy, q_halt_accuracy, steps, tokens, correct_tokens, and with `inputs_BS` fill_cells,
    correct_fill_cells) are the family's eval metrics for
    the trajectory `selection` picks; `by_<rule>_exact_accuracy` / `by_<rule>_accuracy` for every rule (oracle: the
    upper bound); `segments_total`: the segments run per puzzle summed over its K trajectories (the compute)."""
    picks = selections(outputs, labels_BS)
    halted = jnp.ones(labels_BS.shape[:1], bool)
    out = {}
    for rule, index in picks.items():
        chosen = {name: _take(v, index) for name, v in outputs.items()}
        _, m = losses.act_loss(chosen, labels_BS, halted, _take(steps_BK, index), loss_type)
        out[f"by_{rule}_exact_accuracy"], out[f"by_{rule}_accuracy"] = m["exact_accuracy"], m["accuracy"]
        if rule == selection:
            out |= {k: m[k] for k in ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")}
            mask = labels_BS != losses.IGNORE_LABEL_ID
            correct = mask & (jnp.argmax(chosen["logits"], -1) == labels_BS)
            out["tokens"], out["correct_tokens"] = mask.sum(), correct.sum()
            if inputs_BS is not None:
                fill = mask & (labels_BS != inputs_BS)
                out["fill_cells"], out["correct_fill_cells"] = fill.sum(), (fill & correct).sum()
    valid = (labels_BS != losses.IGNORE_LABEL_ID).any(-1)
    out["segments_total"] = jnp.where(valid, steps_BK.sum(-1), 0).sum()
    return out
