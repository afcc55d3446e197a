"""Accuracy against test-time compute for an HRM / TRM puzzle checkpoint: segment budgets (multiples of the model's
halt_max_steps) x K noisy trajectories per puzzle, one restored model, one run.

    python -m evals.test_time_sweep --workdir=runs/sudoku --segments=1,2,4,8 --trajectories=1,4,16 \\
        [--noise_scale=0.1] [--noise_per=step] [--adaptive] [--max_batches=N] [--eval_batch=B] [--out=DIR]

K = 1 runs without noise (the plain evaluation at that segment budget); K > 1 adds the noise. Every point reports
the three selection rules (highest q_halt, majority vote, oracle = an upper bound that reads the labels). Writes
<out>/test_time.md (exact and cell accuracy), test_time.json and test_time.png (exact accuracy against forward FLOPs
per puzzle, log x). FLOPs per puzzle = segments run per puzzle (summed over its K trajectories, as the while loop
counts them) x the family's `segment_flops_per_token` x the sequence length; the XLA cost analysis of one compiled
segment is printed beside it as a cross-check.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
from flax import nnx

from evals import puzzles
from hrm_jax import evaluation, families, parallel, restore, test_time


def segment_flops_xla(restored, seq_len: int) -> float:
    """FLOPs of one segment for one puzzle from XLA's cost analysis of the compiled model call (batch 1)."""
    model = restored.model
    batch = {"inputs": jnp.zeros((1, seq_len), jnp.int32), "puzzle_identifiers": jnp.zeros((1,), jnp.int32)}
    graphdef, *states = nnx.split(model, *evaluation.STATE_FILTERS)

    def call(states, batch):
        with nnx.logical_axis_rules(parallel.LOGICAL_AXIS_RULES):
            m = nnx.merge(graphdef, *states)
            carry = m.reset_carry(jnp.ones((1,), bool), m.empty_carry(1))
            return m(carry, batch)[1:]

    cost = jax.jit(call).lower(tuple(states), batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0))


def sweep(workdir: str, segments: list[int], trajectories: list[int], *, config=None, noise_scale: float = 0.1,
          noise_per: str = "step", adaptive: bool = False, seed: int = 0, max_batches: int = 0,
          eval_batch: int = 0) -> dict:
    """{"points": [...], ...}: one `puzzles.evaluate_family` entry per (segment multiple, K), with its
    flops_per_puzzle."""
    restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
    puzzles.check_puzzle_run(restored.config)
    family = restored.family
    mc = family.model_config
    per_segment = family.segment_flops_per_token() * mc.total_len
    points = []
    for k in trajectories:
        for multiple in segments:
            settings = test_time.TestTimeSettings(segments_multiple=multiple, trajectories=k, seed=seed,
                                                  noise_scale=noise_scale if k > 1 else 0.0, noise_per=noise_per)
            fam = evaluation.with_halting(families.with_test_time(family, settings), adaptive)
            entry = puzzles.evaluate_family(restored, fam, workdir, max_batches, global_batch=eval_batch)
            entry |= {"segments_multiple": multiple, "segments": settings.max_segments(mc.halt_max_steps),
                      "trajectories": k, "flops_per_puzzle": entry["segments_per_puzzle"] * per_segment}
            print(json.dumps({key: v for key, v in entry.items() if key != "settings"}), flush=True)
            points.append(entry)
    return {"step": restored.step, "family": family.name, "halt_max_steps": mc.halt_max_steps,
            "noise_scale": noise_scale, "noise_per": noise_per, "adaptive": adaptive, "seed": seed,
            "segment_flops_per_puzzle": per_segment,
            "segment_flops_per_puzzle_xla": segment_flops_xla(restored, mc.seq_len), "points": points}


def markdown(result: dict) -> str:
    head = (f"{result['family']} step {result['step']}, halt_max_steps {result['halt_max_steps']}, noise "
            f"{result['noise_scale']} per {result['noise_per']} (K > 1 only), adaptive halting "
            f"{result['adaptive']}, seed {result['seed']}; one segment = {result['segment_flops_per_puzzle']:.4g} "
            f"FLOPs per puzzle (XLA cost analysis {result['segment_flops_per_puzzle_xla']:.4g}).\n\n")
    rows = ["| segments | K | segments run / puzzle | FLOPs / puzzle | exact (q_halt) | exact (majority) | "
            "exact (oracle) | cell (q_halt) | cell (majority) | cell (oracle) | puzzles |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        rows.append(f"| {p['segments_multiple']}x ({p['segments']}) | {p['trajectories']} | "
                    f"{p['segments_per_puzzle']:.2f} | {p['flops_per_puzzle']:.3g} | "
                    f"{p['q_halt_exact_accuracy']:.4f} | {p['majority_exact_accuracy']:.4f} | "
                    f"{p['oracle_exact_accuracy']:.4f} | {p['q_halt_accuracy']:.4f} | {p['majority_accuracy']:.4f} | "
                    f"{p['oracle_accuracy']:.4f} | {p['count']:.0f} |")
    return head + "\n".join(rows) + "\n"


def plot(result: dict, path: str) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ks = sorted({p["trajectories"] for p in result["points"]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric, title in ((axes[0], "exact_accuracy", "exact (puzzle) accuracy"),
                              (axes[1], "accuracy", "cell accuracy")):
        for i, k in enumerate(ks):
            pts = sorted((p for p in result["points"] if p["trajectories"] == k), key=lambda p: p["flops_per_puzzle"])
            x = [p["flops_per_puzzle"] for p in pts]
            styles = (("q_halt", "-", "o", "q_halt"), ("majority", "--", "s", "majority"),
                      ("oracle", ":", "^", "oracle (upper bound)"))
            for rule, line, marker, label in styles if k > 1 else styles[:1]:
                ax.plot(x, [p[f"{rule}_{metric}"] for p in pts], line, marker=marker, color=colors[i % len(colors)],
                        label=f"K={k} {label}" if k > 1 else "K=1 (no noise)")
            for p in pts:
                ax.annotate(f"{p['segments_multiple']}x", (p["flops_per_puzzle"], p[f"q_halt_{metric}"]),
                            textcoords="offset points", xytext=(3, 4 + 9 * i), fontsize=7,
                            color=colors[i % len(colors)])
        ax.set_xscale("log")
        ax.set_xlabel("forward FLOPs per puzzle (log)")
        ax.set_ylabel(title)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{title} vs test-time compute")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{result['family']} step {result['step']}: segments (x halt_max_steps={result['halt_max_steps']}) "
                 f"x K trajectories, noise {result['noise_scale']} per {result['noise_per']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "test_time.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "test_time.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    plot(result, os.path.join(out, "test_time.png"))


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"--{name}: expected positive integers, got {text!r}")
    return values


def main(argv) -> None:
    del argv
    from absl import flags  # noqa: PLC0415

    from hrm_jax import runtime  # noqa: PLC0415

    f = flags.FLAGS
    runtime.start(f.workdir, capture_stdout=False)
    result = sweep(f.workdir, _ints(f.segments, "segments"), _ints(f.trajectories, "trajectories"), config=f.config,
                   noise_scale=f.noise_scale, noise_per=f.noise_per, adaptive=f.adaptive, seed=f.seed,
                   max_batches=f.max_batches, eval_batch=f.eval_batch)
    out = f.out or os.path.join(f.workdir, "test_time")
    write(result, out)
    print(markdown(result))
    print(f"wrote {out}/test_time.md, test_time.json, test_time.png")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "The run's config file (optional: runtime fields only).")
    flags.DEFINE_string("workdir", None, "The run directory holding the checkpoint.")
    flags.DEFINE_string("segments", "1,2,4,8", "Segment budgets as multiples of halt_max_steps.")
    flags.DEFINE_string("trajectories", "1,4,16", "K trajectories per puzzle (K = 1 runs without noise).")
    flags.DEFINE_float("noise_scale", 0.1, "Std of the Gaussian noise on z_H / z_L for K > 1.")
    flags.DEFINE_enum("noise_per", "step", list(test_time.NOISE_PER), "Noise after every module call or per segment.")
    flags.DEFINE_boolean("adaptive", False, "Halt each trajectory on its Q head (else the full segment budget).")
    flags.DEFINE_integer("seed", 0, "Noise seed.")
    flags.DEFINE_integer("max_batches", 0, "Evaluate only the first N test batches (0: all).")
    flags.DEFINE_integer("eval_batch", 0, "Puzzles per eval batch (0: the run's global batch); K x this rows run.")
    flags.DEFINE_string("out", None, "Output folder (default <workdir>/test_time).")
    flags.mark_flags_as_required(["workdir"])
    from hrm_jax import runtime

    app.run(lambda argv: runtime.run_or_fail(main, argv), flags_parser=runtime.parse_flags)
