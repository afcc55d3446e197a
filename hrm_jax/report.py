"""The recipe's report: <workdir>/report.md plus PNGs beside it, readable without TensorBoard.

Figures (matplotlib, Agg backend): `loss.png` (train and eval loss per stage against step), `tokens_per_s.png`
(training throughput per stage), `pass_at_k.png` (pass@k with a 95% confidence interval and the sample count).
The markdown adds the stage table (wall time, steps, final losses, peak RSS), the platform and scale, the eval
summary, a few generated solutions with their sandbox verdicts, and the paths of checkpoint, export and logs.

Confidence intervals: greedy pass@1 (one sample per task) is a binomial proportion over tasks, given with the
Wilson score interval; with n samples per task, pass@k is the mean of per-task unbiased estimates and its interval
is a percentile bootstrap over tasks (2,000 resamples, seed 0).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (0, 0 for no trials)."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # min/max: rounding at p = 0 or 1


def _pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_interval(counts: list[tuple[int, int]], k: int, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high) of pass@k over tasks with (n samples, c passed) each."""
    if not counts:
        return 0.0, 0.0, 0.0
    per_task = np.array([_pass_at_k(n, c, k) for n, c in counts])
    estimate = float(per_task.mean())
    if all(n == 1 for n, _ in counts):
        low, high = wilson_interval(sum(c for _, c in counts), len(counts))
        return estimate, low, high
    rng = np.random.default_rng(seed)
    means = per_task[rng.integers(0, len(per_task), (resamples, len(per_task)))].mean(axis=1)
    return estimate, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key`, the last record of a step winning (a resumed run logs a step again)."""
    by_step = {r["step"]: r[key] for r in records if key in r and math.isfinite(r[key])}
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_losses(stages: dict[str, list[dict]], path: str) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4), squeeze=False)
    for ax, (name, records) in zip(axes[0], stages.items()):
        for key, style, label in (("train/loss", "-", "train loss"), ("eval/loss", "o--", "eval loss")):
            x, y = _series(records, key)
            if x:
                ax.plot(x, y, style, label=label)
        ax.set_title(f"{name}: loss (nats/token)")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_throughput(stages: dict[str, list[dict]], path: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, records in stages.items():
        x, y = _series(records, "perf/tokens_per_s")
        if x:
            ax.plot(x, y, ".-", label=f"{name} (median {np.median(y):,.0f})")
    ax.set_title("training throughput")
    ax.set_xlabel("step")
    ax.set_ylabel("tokens / s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pass_at_k(rows: list[dict], title: str, path: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(rows) + 2.5), 4))
    xs = np.arange(len(rows))
    est = np.array([r["estimate"] for r in rows])
    err = np.array([[r["estimate"] - r["low"] for r in rows], [r["high"] - r["estimate"] for r in rows]])
    ax.bar(xs, est * 100, color="tab:blue", alpha=0.8)
    ax.errorbar(xs, est * 100, yerr=err * 100, fmt="none", ecolor="black", capsize=6, label="95% CI")
    for x, r in zip(xs, rows):
        ax.annotate(f"{100 * r['estimate']:.1f}%\n[{100 * r['low']:.1f}, {100 * r['high']:.1f}]",
                    (x, 100 * r["high"]), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=9)
    ax.set_xticks(xs, [r["metric"] for r in rows])
    top = max(10.0, 100 * float(max(r["high"] for r in rows)) * 1.35)
    ax.set_ylim(0, min(100.0, top) if top < 100 else 105)
    ax.set_ylabel("% of tasks")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _task_texts(task_ids: list[str]) -> dict[str, str]:
    """MBPP problem statements by task id (empty when the data is not at hand)."""
    try:
        from input_pipeline import mbpp_data  # noqa: PLC0415

        records = mbpp_data.load_mbpp("test", data_dir=os.environ.get("HRM_JAX_DATA_DIR") or None)
    except Exception:  # noqa: BLE001 (the report works without the problem texts)
        return {}
    wanted = set(task_ids)
    return {str(r["task_id"]): r["text"] for r in records if str(r["task_id"]) in wanted}


def _pick_samples(samples: list[dict], k: int) -> list[dict]:
    """Up to k samples: passed ones first, then the others, each from a different task, in task order."""
    seen, passed, other = set(), [], []
    for r in samples:
        if r["task_id"] in seen:
            continue
        seen.add(r["task_id"])
        (passed if r["status"] == "passed" else other).append(r)
    return (passed + other)[:k]


def _fmt_s(seconds: float | None) -> str:
    from hrm_jax.progress import format_duration  # noqa: PLC0415

    return format_duration(seconds)


def write_report(workdir: str, recipe_state: dict[str, Any], samples: int = 4) -> str:
    """Writes <workdir>/report.md and its PNGs from the stages' files; returns the report's path."""
    stages_state = recipe_state.get("stages", {})
    metrics = {name: read_jsonl(path) for name, path in (
        ("pretrain", os.path.join(workdir, "pretrain", "metrics.jsonl")),
        ("finetune", os.path.join(workdir, "metrics.jsonl"))) if os.path.exists(path)}
    figures = []
    if metrics:
        figures.append(("Loss per stage", plot_losses(metrics, os.path.join(workdir, "loss.png"))))
        figures.append(("Training throughput", plot_throughput(metrics, os.path.join(workdir, "tokens_per_s.png"))))

    lines = ["# Code recipe report", ""]
    scale = recipe_state.get("scale", {})
    if scale:
        lines += [f"Scale **{scale.get('scale')}** ({scale.get('reason')}); JAX backend {scale.get('backend')}.", ""]
    lines += ["## Stages", "", "| stage | wall time | steps | final train loss | eval loss | peak RSS | done |",
              "|---|---|---|---|---|---|---|"]
    for name, s in stages_state.items():
        r = s.get("result") or {}
        fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
        lines.append(f"| {name} | {_fmt_s(s.get('seconds'))} | {r.get('steps', '-')} | {fmt(r.get('final_loss'))} | "
                     f"{fmt(r.get('eval_loss'))} | {s.get('peak_rss_gib', 0):.2f} GiB | "
                     f"{'yes' if s.get('done') else 'no'} |")
    lines.append("")
    for name, records in metrics.items():
        x, y = _series(records, "train/loss")
        if x:
            tps = _series(records, "perf/tokens_per_s")[1]
            lines.append(f"- {name}: train loss {y[0]:.3f} at step {x[0]} -> {y[-1]:.3f} at step {x[-1]}"
                         + (f"; median {np.median(tps):,.0f} tokens/s" if tps else ""))
    lines.append("")

    eval_result = (stages_state.get("eval") or {}).get("result") or {}
    out = eval_result.get("out")
    records = read_jsonl(os.path.join(out, "samples.jsonl")) if out else []
    if out and os.path.exists(os.path.join(out, "summary.json")):
        with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        by_task: dict[str, list[dict]] = {}
        for r in records:
            by_task.setdefault(r["task_id"], []).append(r)
        counts = [(len(v), sum(x["status"] == "passed" for x in v)) for v in by_task.values()]
        rows = []
        for key in summary.get("pass_at_k", {}):
            k = int(key.split("@")[1])
            estimate, low, high = pass_at_k_interval(counts, k)
            rows.append({"metric": key, "estimate": estimate, "low": low, "high": high})
        title = (f"{summary['benchmark']}: {summary['num_tasks']} tasks x {summary['n']} sample(s), "
                 f"temperature {summary['temperature']}")
        if rows:
            figures.append(("pass@k", plot_pass_at_k(rows, title, os.path.join(workdir, "pass_at_k.png"))))
        lines += ["## Evaluation", "", f"{title}; samples in `{out}/samples.jsonl`.", "",
                  "| metric | estimate | 95% CI | tasks | samples |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['metric']} | {100 * r['estimate']:.1f}% | [{100 * r['low']:.1f}%, "
                         f"{100 * r['high']:.1f}%] | {summary['num_tasks']} | {summary['num_samples']} |")
        lines += ["", f"Syntax-valid programs: {100 * summary.get('syntax_valid_rate', 0):.1f}%; verdicts: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.get("status_counts", {}).items())), ""]
        picked = _pick_samples(records, samples)
        if picked:
            texts = _task_texts([p["task_id"] for p in picked])
            lines += ["### Generated solutions", ""]
            for p in picked:
                verdict = p["status"] + (f" ({p['error_type']})" if p.get("error_type") else "")
                lines.append(f"**Task {p['task_id']}** - verdict: **{verdict}**")
                if p["task_id"] in texts:
                    lines.append(f"> {texts[p['task_id']]}")
                code = p["completion"].strip() or "(empty completion)"
                lines += ["", "```python", code[:1500], "```"]
                if p.get("message") and p["status"] != "passed":
                    lines += ["", "```text", p["message"].strip()[-400:], "```"]
                lines.append("")

    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{title}]({os.path.basename(path)})" for title, path in figures]
        lines.append("")
    lines += ["## Files", ""]
    for stage, key in (("pretrain", "checkpoint"), ("finetune", "checkpoint"), ("finetune", "metrics"),
                       ("eval", "out"), ("export", "path")):
        value = ((stages_state.get(stage) or {}).get("result") or {}).get(key)
        if value:
            lines.append(f"- {stage} {key}: `{value}`")
    lines.append(f"- log: `{os.path.join(workdir, 'log.txt')}`")
    path = os.path.join(workdir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
