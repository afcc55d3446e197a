"""Losses and metrics of the original (sapientinc/HRM `models/losses.py`), plus causal-LM targets.

Labels use IGNORE_LABEL_ID (-100) for positions outside the loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

IGNORE_LABEL_ID = -100


def _loss_float():
    """The original computes stablemax in float64; JAX does too when x64 is enabled, else fp32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _stablemax_s(x: jax.Array) -> jax.Array:
    """The original's s(x): 1/(1-x) for x < 0, x + 1 otherwise (always > 0).

    Safe-where form: each branch sees only inputs where it is taken (the other positions get 0), so the untaken
    branch's derivative is finite everywhere. Otherwise 1/(1-x+1e-30) at x == 1 has derivative ~1e60 (inf outside
    float64) and the where's backward computes inf * 0 = NaN for every logit exactly 1.0."""
    negative = x < 0
    x_neg = jnp.where(negative, x, 0.0)
    x_pos = jnp.where(negative, 0.0, x)
    return jnp.where(negative, 1.0 / (1.0 - x_neg + 1e-30), x_pos + 1.0)


def log_stablemax(x: jax.Array, axis: int = -1) -> jax.Array:
    s = _stablemax_s(x)
    return jnp.log(s / jnp.sum(s, axis=axis, keepdims=True))


def stablemax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-token -log stablemax(logits)[label]; 0 where label == -100. Shape of `labels`."""
    logprobs = log_stablemax(logits.astype(_loss_float()))
    valid = labels != IGNORE_LABEL_ID
    picked = jnp.take_along_axis(logprobs, jnp.where(valid, labels, 0)[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return -jnp.where(valid, picked, 0).astype(jnp.float32)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-token softmax cross-entropy in fp32; 0 where label == -100."""
    valid = labels != IGNORE_LABEL_ID
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), jnp.where(valid, labels, 0))
    return jnp.where(valid, ce, 0.0)


def chunked_softmax_cross_entropy(hidden_BSD: jax.Array, head, labels_BS: jax.Array, *, chunk: int | None = None,
                                  max_chunk_elements: int = 2 ** 25) -> tuple[jax.Array, jax.Array]:
    """Per-token softmax cross-entropy and argmax-correctness of `head(hidden)` without the [B, S, V] logits.

    `head` maps hidden states [B, c, D] to logits [B, c, V]. The sequence is cut into chunks of `chunk` positions
    (default: as many as keep B x c x V <= `max_chunk_elements`, i.e. 128 MiB of fp32 logits) and a checkpointed
    `lax.map` computes each chunk's logits, loss and correctness, so the forward and the backward (which recomputes
    a chunk's logits from its hidden states) hold one chunk of logits at a time instead of the whole tensor: the
    full form's [B, S, V] fp32 logits, their softmax and their gradient are each B x S x V x 4 bytes (1 GiB at
    32 x 512 x 16384). Values equal `softmax_cross_entropy(head(hidden), labels)` (0 where label == -100) and
    `argmax(logits) == label` (False there). Returns (loss_BS fp32, correct_BS bool).
    """
    b, s, _ = hidden_BSD.shape
    if chunk is None:
        vocab = jax.eval_shape(head, jax.ShapeDtypeStruct((b, 1, hidden_BSD.shape[-1]), hidden_BSD.dtype)).shape[-1]
        chunk = max(1, min(s, max_chunk_elements // max(b * vocab, 1)))
    n = -(-s // chunk)
    pad = n * chunk - s
    if pad:
        hidden_BSD = jnp.pad(hidden_BSD, ((0, 0), (0, pad), (0, 0)))
        labels_BS = jnp.pad(labels_BS, ((0, 0), (0, pad)), constant_values=IGNORE_LABEL_ID)

    @jax.checkpoint
    def one_chunk(args):
        h_BCD, labels_BC = args
        logits_BCV = head(h_BCD).astype(jnp.float32)
        valid = labels_BC != IGNORE_LABEL_ID
        ce = optax.softmax_cross_entropy_with_integer_labels(logits_BCV, jnp.where(valid, labels_BC, 0))
        correct = valid & (jnp.argmax(logits_BCV, axis=-1) == labels_BC)
        return jnp.where(valid, ce, 0.0), correct

    to_chunks = lambda x: jnp.moveaxis(x.reshape(b, n, chunk, *x.shape[2:]), 1, 0)  # noqa: E731
    loss_NBC, correct_NBC = jax.lax.map(one_chunk, (to_chunks(hidden_BSD), to_chunks(labels_BS)))
    from_chunks = lambda x: jnp.moveaxis(x, 0, 1).reshape(b, n * chunk)[:, :s]  # noqa: E731
    return from_chunks(loss_NBC), from_chunks(correct_NBC)


LOSS_FUNCTIONS = {"stablemax_cross_entropy": stablemax_cross_entropy,
                  "softmax_cross_entropy": softmax_cross_entropy}


def causal_lm_labels(targets_BS: jax.Array, loss_mask_BS: jax.Array | None = None,
                     segment_ids_BS: jax.Array | None = None) -> jax.Array:
    """Next-token labels for inputs: labels[t] = targets[t+1] within the same segment, -100 elsewhere (the last
    position of every segment, padding, and positions whose next token is outside `loss_mask`)."""
    nxt = jnp.pad(targets_BS[:, 1:], ((0, 0), (0, 1)), constant_values=IGNORE_LABEL_ID)
    keep = jnp.ones(targets_BS.shape, bool).at[:, -1].set(False)
    if segment_ids_BS is not None:
        next_seg = jnp.pad(segment_ids_BS[:, 1:], ((0, 0), (0, 1)))
        keep = keep & (next_seg == segment_ids_BS) & (segment_ids_BS != 0)
    if loss_mask_BS is not None:
        keep = keep & jnp.pad(loss_mask_BS[:, 1:].astype(bool), ((0, 0), (0, 1)))
    return jnp.where(keep, nxt, IGNORE_LABEL_ID)


def binary_cross_entropy_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Elementwise, numerically stable (as torch's BCEWithLogits)."""
    return optax.sigmoid_binary_cross_entropy(logits, targets)


def act_loss(outputs: dict[str, jax.Array], labels_BS: jax.Array, halted_B: jax.Array, steps_B: jax.Array,
             loss_type: str = "stablemax_cross_entropy") -> tuple[jax.Array, dict[str, jax.Array]]:
    """The original's ACTLossHead: total = lm + 0.5 * (q_halt + q_continue), summed over the batch.

    lm_loss sums, over ALL sequences, the per-sequence mean token loss; the Q losses are BCE sums. Metrics
    (sums; divide by `count`) cover only halted sequences with at least one label. The caller divides the total
    by the global batch size, as the original's train step does.
    """
    if loss_type not in LOSS_FUNCTIONS:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {sorted(LOSS_FUNCTIONS)}")
    logits, q_halt = outputs["logits"], outputs["q_halt_logits"]
    mask = labels_BS != IGNORE_LABEL_ID
    counts = mask.sum(-1)
    divisor = jnp.maximum(counts, 1)[:, None]

    is_correct = mask & (jnp.argmax(logits, axis=-1) == labels_BS)
    seq_correct = is_correct.sum(-1) == counts
    valid = halted_B & (counts > 0)
    metrics = {
        "count": valid.sum(),
        "accuracy": jnp.where(valid, (is_correct.astype(jnp.float32) / divisor).sum(-1), 0).sum(),
        "exact_accuracy": (valid & seq_correct).sum(),
        "q_halt_accuracy": (valid & ((q_halt >= 0) == seq_correct)).sum(),
        "steps": jnp.where(valid, steps_B, 0).sum(),
    }

    lm_loss = (LOSS_FUNCTIONS[loss_type](logits, labels_BS) / divisor).sum()
    q_halt_loss = binary_cross_entropy_with_logits(q_halt, seq_correct.astype(q_halt.dtype)).sum()
    metrics.update(lm_loss=lm_loss, q_halt_loss=q_halt_loss)
    q_continue_loss = 0.0
    if "target_q_continue" in outputs:
        q_continue_loss = binary_cross_entropy_with_logits(outputs["q_continue_logits"],
                                                           outputs["target_q_continue"]).sum()
        metrics["q_continue_loss"] = q_continue_loss
    total = lm_loss + 0.5 * (q_halt_loss + q_continue_loss)
    return total, metrics
