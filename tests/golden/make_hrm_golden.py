"""Golden tensors of the original HRM (sapientinc/HRM at PINNED_COMMIT), so its parity test runs in every CI run.

Regenerate (one command; needs torch and the original's source at the pinned commit, never committed here):

    git -C /work/.mirror/sapientinc+HRM/repo archive 42410daaaf6ac8b266536d105a6e2362ffe40929 | tar -x -C /tmp/hrm_src
    HRM_ORIGINAL_SRC=/tmp/hrm_src python tests/golden/make_hrm_golden.py      # writes tests/golden/hrm_original.npz

(any checkout of github.com/sapientinc/HRM at that commit works as the source). flash_attn is replaced by an SDPA
stand-in (HRM_REFERENCE.md 7.1). tests/test_original_parity.py runs our model against the file (and, when
HRM_ORIGINAL_SRC is set, against the original live, through the same `run_original` as here).

What a run records, per ACT training step (the original's ACTLossHead in train mode, matched exploration draws):
the batch and draws, logits, q_halt / q_continue logits, loss / B, metrics, the carry's halted / steps /
current_data, the gradient of every parameter (the puzzle table's as a dense [N, D] sum), and the parameters after
AdamATan2 (the adam-atan2 package's rule) and the original's sparse SignSGD (every step live; the last step in the
file, to keep it small). Initial weights are the original's init under torch.manual_seed(0), with a non-trivial
q head and puzzle table. The bf16 mode records the original in float64 (the truth; rms_norm patched to keep
float64) and in bfloat16 over the same weights, without optimiser steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

PINNED_COMMIT = "42410daaaf6ac8b266536d105a6e2362ffe40929"
GOLDEN_PATH = Path(__file__).with_name("hrm_original.npz")

B, S, V, N_IDS = 6, 16, 12, 5
STEPS = 6
LR, WD, PUZZLE_LR, PUZZLE_WD = 1e-3, 0.1, 1e-2, 0.1
LOSS_TYPES = ("stablemax_cross_entropy", "softmax_cross_entropy")


def model_config(puzzle_emb_ndim: int, pos_encodings: str, *, hidden_size: int = 64, num_heads: int = 4,
                 layers: int = 2, forward_dtype: str = "float32") -> dict:
    """The original's config dict (batch_size included) at the test shapes."""
    return dict(batch_size=B, seq_len=S, num_puzzle_identifiers=N_IDS, vocab_size=V, H_cycles=2, L_cycles=2,
                H_layers=layers, L_layers=layers, hidden_size=hidden_size, expansion=4, num_heads=num_heads,
                halt_max_steps=4, halt_exploration_prob=0.5, forward_dtype=forward_dtype,
                puzzle_emb_ndim=puzzle_emb_ndim, pos_encodings=pos_encodings)


# The live test's configs (hidden 64, 2 + 2 layers) and the golden file's (hidden 8, 1 + 1 layers: the same
# structure -- puzzle positions filling whole rows, a padded puzzle row with learned positions, no puzzle --
# small enough that the file stays < 2 MB; the SwiGLU width is 256 at any hidden size below 192).
LIVE_CONFIGS = {
    "rope_puzzle512": model_config(64, "rope"),
    "learned_pad": model_config(100, "learned"),
    "no_puzzle": model_config(0, "rope"),
}
GOLDEN_CONFIGS = {
    "rope_puzzle": model_config(8, "rope", hidden_size=8, num_heads=2, layers=1),
    "learned_pad": model_config(12, "learned", hidden_size=8, num_heads=2, layers=1),
    "no_puzzle": model_config(0, "rope", hidden_size=8, num_heads=2, layers=1),
}
# The file's runs: every config with stablemax (the original's default), softmax on one (it changes only the loss).
GOLDEN_RUNS = ([(name, "stablemax_cross_entropy") for name in GOLDEN_CONFIGS]
               + [("rope_puzzle", "softmax_cross_entropy")])
BF16_CONFIG = "rope_puzzle"  # the golden bf16 mode runs this config (the live one LIVE_CONFIGS["rope_puzzle512"])
# q_head bias of the bf16 mode: q_continue far above q_halt, so no run halts on Q and halting (every
# halt_max_steps segments) is the same in every precision; the q weights stay non-trivial.
BF16_Q_BIAS = (0.0, 3.0)
BF16_GOLDEN_STEPS = 4  # the file keeps the truth of one full ACT cycle (segments 1-4; 5 and 6 restart like 1)


def import_original(src: str):
    """(hrm_act_v1, losses, sparse_embedding) of the original, with an SDPA stand-in for flash_attn."""
    import torch

    def flash_attn_func(q, k, v, causal=False, softmax_scale=None, **kw):
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                             is_causal=causal, scale=softmax_scale)
        return o.transpose(1, 2)

    stub = types.ModuleType("flash_attn")
    stub.flash_attn_func = flash_attn_func
    sys.modules["flash_attn"] = stub
    if src not in sys.path:
        sys.path.insert(0, src)
    from models.hrm import hrm_act_v1  # noqa: PLC0415
    from models import losses, sparse_embedding  # noqa: PLC0415
    # The original's softmax_cross_entropy .view()s fp32-cast sliced logits, which fails (its bug): same math.
    losses.softmax_cross_entropy = lambda logits, labels, ignore_index=-100: torch.nn.functional.cross_entropy(
        logits.to(torch.float32).reshape(-1, logits.shape[-1]), labels.to(torch.long).reshape(-1),
        ignore_index=ignore_index, reduction="none").reshape(labels.shape)
    return hrm_act_v1, losses, sparse_embedding


def strip(key: str) -> str:
    for prefix in ("_orig_mod.", "model.", "inner."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


BATCH_KEYS = ("inputs", "labels", "puzzle_identifiers", "draw_uniform", "draw_min_steps")


def make_batches(cfg: dict, steps: int = STEPS, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Per step: inputs, labels (20% ignored, row 0 all ignored), puzzle ids and the exploration draws."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        inputs = rng.integers(0, V, (B, S))
        labels = np.where(rng.random((B, S)) < 0.2, -100, rng.integers(0, V, (B, S)))
        labels[0] = -100  # a sequence without labels
        ids = rng.integers(0, N_IDS, (B,))
        out.append({"inputs": inputs.astype(np.int32), "labels": labels.astype(np.int32),
                    "puzzle_identifiers": ids.astype(np.int32),
                    "draw_uniform": rng.random(B).astype(np.float32),
                    "draw_min_steps": rng.integers(2, cfg["halt_max_steps"] + 1, B).astype(np.int32)})
    return out


def initial_weights(hrm_act_v1, cfg: dict, q_bias=(0.0, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
    """The original's init under torch.manual_seed(seed), then a non-trivial q head and puzzle table (so halting
    and the table's gradients are exercised); H_init / L_init rounded to bf16 values (exact in every dtype)."""
    import torch

    torch.manual_seed(seed)
    model = hrm_act_v1.HierarchicalReasoningModel_ACTV1(dict(cfg, forward_dtype="float32"))
    with torch.no_grad():
        model.inner.q_head.weight.normal_(0, 0.05)
        model.inner.q_head.bias.copy_(torch.tensor(q_bias))
        if cfg["puzzle_emb_ndim"]:
            model.inner.puzzle_emb.weights.normal_(0, 0.5)
        for name in ("H_init", "L_init"):
            getattr(model.inner, name).copy_(getattr(model.inner, name).to(torch.bfloat16).float())
    return {strip(k): v.detach().float().numpy().copy() for k, v in model.state_dict().items()}


def _torch_adam_atan2_step(params, state, lr, b1=0.9, b2=0.95, wd=WD):
    """The adam-atan2 package's update rule (its pytest reference), on torch tensors."""
    import torch

    state["t"] += 1
    t = state["t"]
    for name, p in params:
        if p.grad is None:
            continue
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        g = p.grad
        with torch.no_grad():
            p.mul_(1 - lr * wd)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.add_(torch.atan2(m, v.sqrt() / (1 - b2 ** t) ** 0.5), alpha=-lr / (1 - b1 ** t))


@contextlib.contextmanager
def _float64_rms_norm(hrm_act_v1):
    """The original's rms_norm computes in float32 whatever the input; for the float64 truth keep float64."""
    import torch

    original = hrm_act_v1.rms_norm

    def rms_norm(hidden_states, variance_epsilon):
        h = hidden_states.to(torch.float64)
        return (h * torch.rsqrt(h.square().mean(-1, keepdim=True) + variance_epsilon)).to(hidden_states.dtype)

    hrm_act_v1.rms_norm = rms_norm
    try:
        yield
    finally:
        hrm_act_v1.rms_norm = original


@contextlib.contextmanager
def _matched_draws(step_batch):
    import torch

    rand, randint = torch.rand_like, torch.randint_like
    torch.rand_like = lambda x: torch.tensor(step_batch["draw_uniform"]).to(x.dtype)
    torch.randint_like = lambda x, low, high: torch.tensor(step_batch["draw_min_steps"]).to(x.dtype)
    try:
        yield
    finally:
        torch.rand_like, torch.randint_like = rand, randint


def run_original(modules, cfg: dict, loss_type: str, weights: dict[str, np.ndarray], batches, *,
                 optimize: bool = True, params_every_step: bool = True) -> list[dict[str, np.ndarray]]:
    """The original's training steps from `weights`; one record (flat dict of numpy arrays) per step.

    cfg["forward_dtype"] "float64" runs the truth: every parameter, buffer and activation in float64."""
    import torch

    hrm_act_v1, orig_losses, sparse_embedding = modules
    float64 = cfg["forward_dtype"] == "float64"
    model = hrm_act_v1.HierarchicalReasoningModel_ACTV1(cfg)
    pe = getattr(model.inner, "puzzle_emb", None) if cfg["puzzle_emb_ndim"] else None
    if float64:
        model.double()
        if pe is not None:  # .double() made the leaf a non-leaf copy: a fresh float64 leaf takes the gradient
            pe.local_weights = torch.zeros(pe.local_weights.shape, dtype=torch.float64, requires_grad=True)
    model.load_state_dict({"inner." + k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    head = orig_losses.ACTLossHead(model, loss_type)
    head.train()
    adam_state = {"t": 0}
    sign = (sparse_embedding.CastedSparseEmbeddingSignSGD_Distributed(pe.buffers(), world_size=1, lr=PUZZLE_LR,
                                                                       weight_decay=PUZZLE_WD)
            if optimize and pe is not None else None)
    records, carry = [], None
    norm = _float64_rms_norm(hrm_act_v1) if float64 else contextlib.nullcontext()
    with norm:
        for step, sb in enumerate(batches):
            tb = {k: torch.from_numpy(sb[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
            if carry is None:
                carry = head.initial_carry(tb)
            with _matched_draws(sb):
                carry, loss, metrics, outputs, _ = head(
                    return_keys=["logits", "q_halt_logits", "q_continue_logits"], carry=carry, batch=tb)
            model.zero_grad()
            if pe is not None:
                pe.local_weights.grad = None
            ((1 / B) * loss).backward()

            rec = {k: v for k, v in sb.items()}
            rec.update({k: outputs[k].float().numpy() for k in ("logits", "q_halt_logits", "q_continue_logits")})
            rec["loss"] = np.float64(float(loss.detach()) / B)
            rec.update({f"metric.{k}": np.float64(float(v)) for k, v in metrics.items()})
            rec["halted"], rec["steps"] = carry.halted.numpy().copy(), carry.steps.numpy().copy()
            rec.update({f"data.{k}": v.numpy().copy() for k, v in carry.current_data.items()})
            rec.update({f"grad.{strip(k)}": p.grad.detach().float().numpy().copy()
                        for k, p in model.named_parameters() if p.grad is not None})
            if pe is not None:
                rec["grad.puzzle_emb.weights"] = torch.zeros(pe.weights.shape, dtype=pe.local_weights.grad.dtype) \
                    .index_add_(0, pe.local_ids.long(), pe.local_weights.grad).float().numpy()
            if optimize:
                _torch_adam_atan2_step(list(model.named_parameters()), adam_state, LR)
                if sign is not None:
                    sign.step()
                if params_every_step or step == len(batches) - 1:
                    rec.update({f"param.{strip(k)}": v.detach().float().numpy().copy()
                                for k, v in model.state_dict().items()})
            records.append(rec)
    return records


def bf16_records(modules, cfg: dict, batches) -> tuple[dict, list[dict], list[dict]]:
    """(weights, float64-truth records, original-bf16 records) of the bf16 mode (stablemax, no optimiser)."""
    weights = initial_weights(modules[0], cfg, q_bias=BF16_Q_BIAS)
    truth = run_original(modules, dict(cfg, forward_dtype="float64"), "stablemax_cross_entropy", weights, batches,
                         optimize=False)
    bf16 = run_original(modules, dict(cfg, forward_dtype="bfloat16"), "stablemax_cross_entropy", weights, batches,
                        optimize=False)
    return weights, truth, bf16


def record_errors(ours: dict, ref: dict) -> dict[str, float]:
    """Distances of one step's record from a reference record: logits and q (max abs), loss (relative), gradients
    (max over tensors of max abs error / the reference tensor's max abs), parameters (max abs), where present."""
    out = {"logits": float(np.abs(ours["logits"].astype(np.float64) - ref["logits"]).max()),
           "q": max(float(np.abs(ours[k].astype(np.float64) - ref[k]).max())
                    for k in ("q_halt_logits", "q_continue_logits")),
           "loss": abs(float(ours["loss"]) - float(ref["loss"])) / abs(float(ref["loss"]))}
    grads = sorted(k for k in ref if k.startswith("grad."))
    assert set(grads) == {k for k in ours if k.startswith("grad.")}, "gradient names differ"
    out["grad"] = max(float(np.abs(ours[k].astype(np.float64) - ref[k]).max()) / max(float(np.abs(ref[k]).max()),
                                                                                      1e-12) for k in grads)
    params = sorted(k for k in ref if k.startswith("param."))
    if params:
        out["params"] = max(float(np.abs(ours[k].astype(np.float64) - ref[k]).max()) for k in params)
    return out


def worst(errors: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for e in errors for k in e})
    return {k: max(e[k] for e in errors if k in e) for k in keys}


def build_golden(src: str) -> dict[str, np.ndarray]:
    modules = import_original(src)
    arrays: dict[str, np.ndarray] = {}
    meta = {"pinned_commit": PINNED_COMMIT, "configs": GOLDEN_CONFIGS, "runs": GOLDEN_RUNS, "steps": STEPS,
            "bf16_config": BF16_CONFIG, "bf16_q_bias": BF16_Q_BIAS, "bf16_steps": BF16_GOLDEN_STEPS}
    for name, cfg in GOLDEN_CONFIGS.items():
        weights = initial_weights(modules[0], cfg)
        arrays.update({f"{name}/init/{k}": v for k, v in weights.items()})
        batches = make_batches(cfg)
        arrays.update({f"{name}/batch/{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()})
        for loss_type in (lt for n, lt in GOLDEN_RUNS if n == name):
            recs = run_original(modules, cfg, loss_type, weights, batches, params_every_step=False)
            for i, rec in enumerate(recs):
                arrays.update({f"{name}/{loss_type}/{i}/{k}": v for k, v in rec.items() if k not in BATCH_KEYS})
    cfg = GOLDEN_CONFIGS[BF16_CONFIG]
    weights, truth, bf16 = bf16_records(modules, cfg, make_batches(cfg, BF16_GOLDEN_STEPS))
    assert all(np.array_equal(v, bf16_weights(arrays)[k]) for k, v in weights.items())
    for i, rec in enumerate(truth):
        arrays.update({f"bf16/truth/{i}/{k}": v for k, v in rec.items()
                       if k in ("logits", "q_halt_logits", "q_continue_logits", "loss", "halted", "steps")
                       or k.startswith("grad.")})
    meta["bf16_original_errors"] = [record_errors(b, t) for b, t in zip(bf16, truth)]
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return arrays


def bf16_weights(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The bf16 mode's weights: BF16_CONFIG's initial weights with the q_head bias BF16_Q_BIAS (same torch seed)."""
    prefix = f"{BF16_CONFIG}/init/"
    weights = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return dict(weights, **{"q_head.bias": np.asarray(BF16_Q_BIAS, np.float32)})


def load_golden(path: Path = GOLDEN_PATH) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of the committed file."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def golden_run(arrays: dict[str, np.ndarray], name: str, loss_type: str | None) -> tuple[dict, list[dict]]:
    """(initial weights, per-step records with the batch merged in) of one run in the file; loss_type None = the
    bf16 mode's float64 truth (config BF16_CONFIG)."""
    if loss_type is None:
        name, run, weights = BF16_CONFIG, "bf16/truth", bf16_weights(arrays)
    else:
        run, prefix = f"{name}/{loss_type}", f"{name}/init/"
        weights = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    records = []
    for i in range(BF16_GOLDEN_STEPS if loss_type is None else STEPS):
        rec = {}
        for prefix in (f"{run}/{i}/", f"{name}/batch/{i}/"):
            rec.update({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        records.append(rec)
    return weights, records


def main() -> None:
    src = os.environ.get("HRM_ORIGINAL_SRC")
    if not src:
        raise SystemExit("set HRM_ORIGINAL_SRC to a checkout of sapientinc/HRM at " + PINNED_COMMIT)
    arrays = build_golden(src)
    np.savez_compressed(GOLDEN_PATH, **arrays)
    print(f"wrote {GOLDEN_PATH} ({GOLDEN_PATH.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()
