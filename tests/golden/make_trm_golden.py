"""Golden tensors of the original TRM (SamsungSAILMontreal/TinyRecursiveModels), for tests/test_trm_parity.py.

Runs the original's own model, loss head, sparse SignSGD, EMA helper, and the adam-atan2 update rule (the package is
CUDA-only; its reference formula is below) in fp32 on CPU, over ACT_STEPS training steps of four tiny variants
(attention and mlp_t, puzzle embedding on and off), with seeded weights, batches and exploration draws, and writes
what the original computed (logits, q values, loss, metrics, halting, steps, the recurrent carry, every gradient,
the parameters and the EMA shadow after the optimiser steps) into one compressed .npz. The original's source is
never committed here.
Regenerate with one command, from the pinned commit:

    git clone https://github.com/SamsungSAILMontreal/TinyRecursiveModels /tmp/TRM
    git -C /tmp/TRM checkout e7b68717f0a6c4cbb4ce6fbef787b14f42083bd9
    python tests/golden/make_trm_golden.py --original /tmp/TRM

TRM needs no flash-attn (it calls torch's scaled_dot_product_attention) and no GPU for these modules. The weights
are not stored: `seeded_state_dict` (numpy only, shared with the test) rebuilds them from the seed and the shapes.
Every variant uses stablemax, the original's TRM loss: its softmax_cross_entropy cannot be called from its
ACTLossHead at this commit (TypeError: unexpected keyword argument 'valid_mask').
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import zlib

import numpy as np

PINNED_COMMIT = "e7b68717f0a6c4cbb4ce6fbef787b14f42083bd9"
OUT = pathlib.Path(__file__).resolve().parent / "trm_original_golden.npz"
SEED = 0
B, S, V, N_IDS = 6, 8, 10, 5
ACT_STEPS = 6
LR, WD, BETAS = 1e-3, 0.1, (0.9, 0.95)
PUZZLE_LR, PUZZLE_WD = 1e-2, 0.1
EMA_MU = 0.9  # the original's EMAHelper with mu 0.9 (0.999 would barely move in 6 steps)

_COMMON = dict(batch_size=B, seq_len=S, vocab_size=V, num_puzzle_identifiers=N_IDS, H_cycles=3, L_cycles=2,
               H_layers=0, hidden_size=8, expansion=4, num_heads=2, halt_max_steps=4, halt_exploration_prob=0.5,
               forward_dtype="float32", no_ACT_continue=True)
# name -> (the original's config dict, loss type)
VARIANTS = {
    "att_rope_puzzle": (dict(_COMMON, L_layers=2, pos_encodings="rope", mlp_t=False, puzzle_emb_ndim=8,
                             puzzle_emb_len=16), "stablemax_cross_entropy"),
    "att_learned_nopuzzle": (dict(_COMMON, L_layers=2, pos_encodings="learned", mlp_t=False, puzzle_emb_ndim=0,
                                  puzzle_emb_len=0), "stablemax_cross_entropy"),
    "mlpt_puzzle": (dict(_COMMON, L_layers=1, pos_encodings="none", mlp_t=True, puzzle_emb_ndim=8,
                         puzzle_emb_len=8), "stablemax_cross_entropy"),
    "mlpt_nopuzzle": (dict(_COMMON, L_layers=1, pos_encodings="none", mlp_t=True, puzzle_emb_ndim=0,
                           puzzle_emb_len=0), "stablemax_cross_entropy"),
}
METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss")


def seeded_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Deterministic fp32 weights for the original's state_dict keys (no prefix): truncation-free normals with
    LeCun scales, a small non-zero q head (bias 0 / 0.1, so halting happens), unit H_init / L_init, a puzzle table
    of std 0.5. Each key draws from its own stream (seed, crc32(key)), so key order does not matter."""
    out = {}
    for key, shape in shapes.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key == "q_head.bias":
            value = np.array([0.0, 0.1])
        elif key == "q_head.weight":
            value = rng.normal(0.0, 0.05, shape)
        elif key in ("H_init", "L_init"):
            value = rng.normal(0.0, 1.0, shape)
        elif key == "puzzle_emb.weights":
            value = rng.normal(0.0, 0.5, shape)
        elif key.endswith("embedding_weight"):
            value = rng.normal(0.0, shape[1] ** -0.5, shape)
        else:  # CastedLinear (out, in)
            value = rng.normal(0.0, shape[1] ** -0.5, shape)
        out[key] = np.asarray(value, np.float32)
    return out


def step_data(seed: int, step: int, halt_max_steps: int) -> dict[str, np.ndarray]:
    """The batch and exploration draws of one step (shared by both sides through the file)."""
    rng = np.random.default_rng([seed, 1000 + step])
    labels = np.where(rng.random((B, S)) < 0.2, -100, rng.integers(0, V, (B, S)))
    labels[0] = -100  # a sequence without labels
    labels[1] = rng.integers(0, 3, S)  # and one the model may get right
    return {"inputs": rng.integers(0, V, (B, S)).astype(np.int32), "labels": labels.astype(np.int32),
            "puzzle_identifiers": rng.integers(0, N_IDS, (B,)).astype(np.int32),
            "uniform": rng.random(B).astype(np.float32),
            "min_steps": rng.integers(2, halt_max_steps + 1, B).astype(np.int32)}


def _adam_atan2_step(torch, named_params, state, lr):
    """The adam-atan2 package's update (its pytest reference), decoupled weight decay first."""
    state["t"] += 1
    t, (b1, b2) = state["t"], BETAS
    for name, p in named_params:
        if p.grad is None:
            continue
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        g = p.grad
        with torch.no_grad():
            p.mul_(1 - lr * WD)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.add_(torch.atan2(m, v.sqrt() / (1 - b2 ** t) ** 0.5), alpha=-lr / (1 - b1 ** t))


def run_variant(torch, modules, name: str) -> dict[str, np.ndarray]:
    trm, losses, sparse_embedding, ema = modules
    cfg, loss_type = VARIANTS[name]
    torch.manual_seed(SEED)
    head = losses.ACTLossHead(trm.TinyRecursiveReasoningModel_ACTV1(dict(cfg)), loss_type)
    inner = head.model.inner
    prefix = "model.inner."
    shapes = {k[len(prefix):]: tuple(v.shape) for k, v in head.state_dict().items()}
    weights = seeded_state_dict(shapes)
    head.load_state_dict({prefix + k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    head.train()
    puzzle = cfg["puzzle_emb_ndim"] > 0
    sign = (sparse_embedding.CastedSparseEmbeddingSignSGD_Distributed(inner.puzzle_emb.buffers(), world_size=1,
                                                                      lr=PUZZLE_LR, weight_decay=PUZZLE_WD)
            if puzzle else None)
    adam_state = {"t": 0}
    ema_helper = ema.EMAHelper(mu=EMA_MU)
    ema_helper.register(head)

    out: dict[str, np.ndarray] = {}
    carry = None
    for step in range(ACT_STEPS):
        d = step_data(SEED, step, cfg["halt_max_steps"])
        batch = {k: torch.from_numpy(d[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
        if carry is None:
            carry = head.initial_carry(batch)
        rand_like, randint_like = torch.rand_like, torch.randint_like
        torch.rand_like = lambda x: torch.from_numpy(d["uniform"]).to(x.dtype)
        torch.randint_like = lambda x, low, high: torch.from_numpy(d["min_steps"]).to(x.dtype)
        try:
            carry, loss, metrics, outputs, _ = head(return_keys=["logits", "q_halt_logits", "q_continue_logits"],
                                                    carry=carry, batch=batch)
        finally:
            torch.rand_like, torch.randint_like = rand_like, randint_like
        head.zero_grad()
        if puzzle:
            inner.puzzle_emb.local_weights.grad = None
        ((1 / B) * loss).backward()

        p = f"{name}/{step}/"
        for k in ("logits", "q_halt_logits", "q_continue_logits"):
            out[p + k] = outputs[k].numpy().astype(np.float32)
        out[p + "loss"] = np.float64(loss.detach()) / B
        for k in METRIC_KEYS:
            out[p + "metric/" + k] = np.float64(metrics[k])
        if step < ACT_STEPS - 1:  # the recurrent state the next step starts from (the test resumes from it)
            out[p + "carry_z_H"] = carry.inner_carry.z_H.numpy().astype(np.float32)
            out[p + "carry_z_L"] = carry.inner_carry.z_L.numpy().astype(np.float32)
        out[p + "halted"] = carry.halted.numpy()
        out[p + "steps"] = carry.steps.numpy().astype(np.int32)
        for k, param in head.named_parameters():
            out[p + "grad/" + k[len(prefix):]] = param.grad.numpy().astype(np.float32)
        if puzzle:
            pe = inner.puzzle_emb
            out[p + "grad/puzzle_emb.weights"] = torch.zeros_like(pe.weights).index_add_(
                0, pe.local_ids.long(), pe.local_weights.grad).numpy()
            out[p + "slot_puzzle_identifiers"] = carry.current_data["puzzle_identifiers"].numpy()

        _adam_atan2_step(torch, list(head.named_parameters()), adam_state, LR)
        if sign is not None:
            sign.step()
        ema_helper.update(head)

    for k, v in head.state_dict().items():
        out[f"{name}/final/param/{k[len(prefix):]}"] = v.numpy().astype(np.float32)
    for k, v in ema_helper.state_dict().items():
        out[f"{name}/final/ema/{k[len(prefix):]}"] = v.numpy().astype(np.float32)
    out[f"{name}/shapes"] = np.frombuffer(json.dumps(shapes).encode(), np.uint8)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, help="a checkout of TinyRecursiveModels (pinned commit)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    src = pathlib.Path(args.original).resolve()
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = "unknown (not a git checkout)"
    if commit != PINNED_COMMIT:
        print(f"warning: {src} is at {commit}, the golden file is defined at {PINNED_COMMIT}", file=sys.stderr)
    sys.path.insert(0, str(src))
    import torch  # noqa: PLC0415

    from models import ema, losses, sparse_embedding  # noqa: PLC0415
    from models.recursive_reasoning import trm  # noqa: PLC0415

    torch.use_deterministic_algorithms(True)
    out = {}
    for name in VARIANTS:
        out.update(run_variant(torch, (trm, losses, sparse_embedding, ema), name))
    meta = dict(commit=commit, seed=SEED, act_steps=ACT_STEPS, lr=LR, weight_decay=WD, betas=BETAS,
                puzzle_emb_lr=PUZZLE_LR, puzzle_emb_weight_decay=PUZZLE_WD, ema_mu=EMA_MU,
                variants={k: {"config": c, "loss_type": t} for k, (c, t) in VARIANTS.items()},
                torch=torch.__version__)
    out["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out}: {len(out)} arrays, {pathlib.Path(args.out).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
