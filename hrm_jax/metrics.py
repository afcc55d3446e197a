"""Metric writing and progress, behind one small module.

Writers: a JSONL file (`metrics.jsonl`, one record per report, full float precision), TensorBoard event files
through tensorboardX (clu's writers need TensorFlow, which is not a dependency), and console logging. Only process
0 writes files. `PerfMeter` gives steps/s, tokens/s, ETA and an MFU estimate from a documented FLOP count.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import ml_collections
from absl import logging

from hrm_jax.model.hrm import HRMConfig
from hrm_jax.model.layers import swiglu_intermediate_size

# Dense bf16 peak per device (datasheet), for the MFU estimate.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12, "TPU v5 lite": 197e12,
              "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12}


def peak_flops_per_device() -> float | None:
    kind = jax.devices()[0].device_kind
    for name, flops in PEAK_FLOPS.items():
        if name.lower() in kind.lower():
            return flops
    return None


def hrm_block_flops_per_token(mc: HRMConfig) -> float:
    """Forward FLOPs of one block for one token: 2 x (qkv 3D^2 + o D^2 + gate_up 2DI + down DI) + attention
    scores and values 2 x 2 x S x D (full S: the original attends everywhere; causal halves it, not counted)."""
    d, s = mc.hidden_size, mc.total_len
    inter = swiglu_intermediate_size(d, mc.expansion)
    return 2 * (4 * d * d + 3 * d * inter) + 4 * s * d


def hrm_train_flops(mc: HRMConfig, global_batch: int) -> float:
    """FLOPs of one HRM train step (one ACT segment per sample):
    all no-gradient H/L calls forward; the last L and H calls forward + backward (3x forward); lm_head and q_head
    forward + backward; plus, when ACT trains (halt_max_steps > 1), the gradient-free second forward of the whole
    segment for the Q target."""
    block = hrm_block_flops_per_token(mc)
    l_call, h_call = mc.L_layers * block, mc.H_layers * block
    no_grad = (mc.H_cycles * mc.L_cycles - 1) * l_call + (mc.H_cycles - 1) * h_call
    grad = 3 * (l_call + h_call + 2 * mc.hidden_size * mc.vocab_size)
    segment_fwd = no_grad + l_call + h_call + 2 * mc.hidden_size * mc.vocab_size
    q_target = segment_fwd if mc.halt_max_steps > 1 else 0.0
    return float(global_batch * mc.total_len * (no_grad + grad + q_target))


class PerfMeter:
    """steps/s, tokens/s, ETA and MFU over the interval since the last report, for the metrics files (the
    console's progress line is `hrm_jax.progress.Progress`)."""

    def __init__(self, start_step: int, tokens_per_step: int, flops_per_step: float, total_steps: int | None = None,
                 xla_flops_per_step: float | None = None):
        """`flops_per_step`: the family's formula; `xla_flops_per_step`: XLA's cost analysis of the compiled step
        (all devices). `perf/mfu` uses XLA's count when there is one (else the formula), `perf/mfu_formula` the
        formula's."""
        self.total, self.tokens_per_step, self.flops_per_step = total_steps, tokens_per_step, flops_per_step
        self.xla_flops_per_step = xla_flops_per_step
        self.peak = peak_flops_per_device()
        self.last_step, self.last_time = start_step, time.perf_counter()

    def report(self, step: int) -> dict[str, float]:
        now = time.perf_counter()
        steps = max(step - self.last_step, 1)
        seconds = max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        rate = steps / seconds
        out = {"perf/steps_per_s": rate, "perf/tokens_per_s": rate * self.tokens_per_step}
        if self.total is not None:
            out["perf/eta_s"] = (self.total - step) / rate
        if self.peak:
            peak = self.peak * jax.device_count()
            out["perf/mfu_formula"] = rate * self.flops_per_step / peak
            out["perf/mfu"] = rate * (self.xla_flops_per_step or self.flops_per_step) / peak
        return out


def truncate_jsonl(path: str, last_step: int) -> int:
    """Keep the records of `path` up to `last_step` (and drop a line a kill left half-written); returns how many
    records were dropped. The file is replaced atomically."""
    if not os.path.exists(path):
        return 0
    kept, dropped = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
                keep = line.endswith("\n") and int(record["step"]) <= last_step
            except (ValueError, KeyError, TypeError):
                keep = False
            if keep:
                kept.append(line)
            else:
                dropped += 1
    if dropped:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(tmp, path)
    return dropped


class MetricWriter:
    """metrics.jsonl + TensorBoard. `resume_step` (a run restarting from that step's checkpoint) first removes
    every record after it, and tells TensorBoard to purge its events after it, so each step appears once."""

    def __init__(self, workdir: str, enabled: bool = True, resume_step: int | None = None):
        self.workdir, self.enabled = workdir, enabled
        self._tb = None
        self._jsonl = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            path = os.path.join(workdir, "metrics.jsonl")
            if resume_step is not None:
                dropped = truncate_jsonl(path, resume_step)
                if dropped:
                    logging.info("metrics.jsonl: dropped %d records after step %d (the run resumes there)",
                                 dropped, resume_step)
            self._jsonl = open(path, "a", encoding="utf-8")
            try:
                from tensorboardX import SummaryWriter  # noqa: PLC0415
                purge = None if resume_step is None else resume_step + 1
                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge)
            except ImportError:  # pragma: no cover - tensorboardX is in requirements
                logging.warning("tensorboardX is not installed: no TensorBoard events")

    def write_config(self, config: ml_collections.ConfigDict) -> None:
        if self.enabled:
            from hrm_jax.config import to_json  # noqa: PLC0415
            with open(os.path.join(self.workdir, "config.json"), "w", encoding="utf-8") as f:
                f.write(to_json(config))

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        scalars = {k: float(v) for k, v in scalars.items()}
        logging.info("step %d: %s", step, " ".join(f"{k}={v:.6g}" for k, v in sorted(scalars.items())))
        if not self.enabled:
            return
        self._jsonl.write(json.dumps({"step": int(step), **scalars}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in scalars.items():
                if math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def write_train(self, step: int, m: dict, global_batch: int, perf: dict[str, float]) -> None:
        """The original's normalisation: keys ending in `loss` per example, the rest per halted sequence."""
        count = max(float(m.get("count", 0.0)), 1.0)
        out = {"train/loss": float(m["loss"]), "train/lr": float(m["lr"]), "train/grad_norm": float(m["grad_norm"]),
               "train/param_norm": float(m["param_norm"])}
        for k in ("lm_loss", "q_halt_loss", "q_continue_loss"):
            if k in m:
                out[f"train/{k}"] = float(m[k]) / global_batch
        for k in ("accuracy", "exact_accuracy", "q_halt_accuracy", "steps"):
            if k in m:
                out[f"train/{k}"] = float(m[k]) / count
        if "count" in m:
            out["train/count"] = float(m["count"])
        if "tokens" in m:
            out["train/token_accuracy"] = float(m["correct_tokens"]) / max(float(m["tokens"]), 1.0)
        self.write_scalars(step, {**out, **perf})

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
