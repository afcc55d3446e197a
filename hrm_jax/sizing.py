"""Sizing the transformer baseline to a reference model: equal trainable parameters or equal forward FLOPs per token.

A reference is any family's size (`SizeReference`: trainable parameters, forward FLOPs per token, and the width the
baseline inherits); `hrm_jax.config.SIZE_REFERENCES` builds one per family from the same run config, so a new family
(TRM) plugs in with one function. `size_transformer` then picks the layer count whose count is nearest the
reference's (ties: fewer layers).

FLOPs, forward only, one segment (one model call; ACT multiplies every family by its segment count alike): per
block and sequence position 2 x (projection weights) + 4 x L x (heads x head_dim) for attention scores and values
over the full row length L (bidirectional and causal counted alike), plus 2 x D x V for the lm_head at every position
the model computes it; divided by the row's token count (puzzle positions are overhead of the model that has them).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from hrm_jax.model import layers
from hrm_jax.model.hrm import HRMConfig
from hrm_jax.model.hrm_text import HrmTextConfig
from hrm_jax.model.transformer import TransformerConfig, num_params as transformer_num_params

SIZE_BY = ("params", "flops")


@dataclasses.dataclass(frozen=True)
class SizeReference:
    """What the baseline is matched to: the reference family's counts and the width the baseline takes from it."""

    family: str  # "hrm", "hrm_text", "trm", ...
    params: int  # trainable parameters (no buffers, no sparse puzzle table)
    forward_flops_per_token: float
    hidden_size: int
    num_heads: int
    head_dim: int
    intermediate_size: int


def hrm_num_params(c: HRMConfig) -> int:
    """HRM's trainable parameters (nnx.Param: H_init / L_init buffers and the puzzle table excluded): token table,
    lm_head, Q head, learned positions, and H_layers + L_layers post-norm blocks."""
    d = c.hidden_size
    block = 4 * d * d + 3 * d * layers.swiglu_intermediate_size(d, c.expansion)
    learned = c.total_len * d if c.pos_encodings == "learned" else 0
    return 2 * c.vocab_size * d + 2 * d + 2 + learned + (c.H_layers + c.L_layers) * block


def block_forward_flops(hidden_size: int, attn_width: int, intermediate_size: int, row_len: int,
                        projections: int = 3) -> float:
    """Forward FLOPs of one attention + SwiGLU block for one position: `projections` input projections (3 = q|k|v,
    4 = HRM-Text's gated g|q|k|v) of D x (N x Hd), o_proj, gate|up and down, and attention over `row_len` keys."""
    d, nh, i = hidden_size, attn_width, intermediate_size
    return 2.0 * (projections * d * nh + nh * d + 3 * d * i) + 4.0 * row_len * nh


def hrm_forward_flops_per_token(c: HRMConfig) -> float:
    """One HRM segment: H_cycles x (L_cycles L-module calls + one H-module call), lm_head on all S+P positions."""
    d = c.hidden_size
    block = block_forward_flops(d, d, layers.swiglu_intermediate_size(d, c.expansion), c.total_len)
    applications = c.H_cycles * (c.L_cycles * c.L_layers + c.H_layers)
    return (applications * block + 2.0 * d * c.vocab_size) * c.total_len / c.seq_len


def hrm_text_forward_flops_per_token(c: HrmTextConfig, seq_len: int) -> float:
    """HRM-Text: H_cycles x (L_cycles + 1) stack calls of gated-attention blocks, then lm_head."""
    block = block_forward_flops(c.hidden_size, c.num_attention_heads * c.head_dim, c.intermediate_size, seq_len,
                                projections=4)
    applications = c.H_cycles * (c.L_cycles + 1) * c.num_layers_per_stack
    return applications * block + 2.0 * c.hidden_size * c.vocab_size


def transformer_forward_flops_per_token(c: TransformerConfig) -> float:
    block = block_forward_flops(c.hidden_size, c.num_heads * c.head_dim, c.intermediate_size, c.total_len)
    return (c.num_layers * block + 2.0 * c.hidden_size * c.vocab_size) * c.total_len / c.seq_len


def transformer_measure(config: TransformerConfig, by: Literal["params", "flops"]) -> float:
    if by == "params":
        return float(transformer_num_params(config))
    if by == "flops":
        return transformer_forward_flops_per_token(config)
    raise ValueError(f"size_by must be one of {SIZE_BY}, got {by!r}")


def reference_measure(reference: SizeReference, by: str) -> float:
    return float(reference.params) if by == "params" else reference.forward_flops_per_token


def size_transformer(base: TransformerConfig, reference: SizeReference,
                     by: Literal["params", "flops"]) -> TransformerConfig:
    """`base` with the layer count (>= 1) whose parameters / forward FLOPs per token are nearest the reference's.
    Both counts are affine in the layer count, so two probes give the line and the neighbours of its root are
    compared exactly."""
    target = reference_measure(reference, by)
    one, two = (transformer_measure(base.replace(num_layers=n), by) for n in (1, 2))
    per_layer = two - one
    guess = max(1, round((target - (one - per_layer)) / per_layer))
    candidates = sorted({max(1, guess - 1), guess, guess + 1})
    best = min(candidates, key=lambda n: (abs(transformer_measure(base.replace(num_layers=n), by) - target), n))
    return base.replace(num_layers=best)


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def _flops(x: float) -> str:
    return f"{x / 1e9:.3g} GFLOP" if x >= 1e8 else f"{x / 1e6:.3g} MFLOP"


def describe(config: TransformerConfig, reference: SizeReference, by: str | None) -> str:
    """The start-of-run line, e.g. 'transformer: 8 layers, 27.28M params, 1.1 GFLOP/token forward
    (HRM ref 27.28M params, 3.3 GFLOP/token; equal params)'. `by` None: the layer count was set explicitly."""
    own = (f"transformer: {config.num_layers} layers, {_millions(transformer_num_params(config))} params, "
           f"{_flops(transformer_forward_flops_per_token(config))}/token forward")
    how = f"equal {by}" if by else "layers set explicitly"
    return (f"{own} ({reference.family.upper().replace('_', '-')} ref {_millions(reference.params)} params, "
            f"{_flops(reference.forward_flops_per_token)}/token; {how})")
