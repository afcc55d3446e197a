"""The study's results page: DIR/RESULTS.md and DIR/figures/*.png, from the run folders' own files only.

Read per run (DIR/runs/<name>/): `study.json` (plan: command, config, overrides, FLOPs per step, parameters;
stage wall times, commit, machine; the puzzle evaluations), `metrics.jsonl` (the trainer's train / eval records),
and for code runs `pretrain/metrics.jsonl`, `recipe.json` and `eval/mbpp_test/summary.json`. Nothing is measured
here, so `python -m benchmarks.study --report-only --out=DIR` regenerates the page from the same files.

Figures: `curves_<task>.png` (train loss and held-out exact accuracy, or for code held-out loss, against training
FLOPs, one line per run),
`depth.png` (held-out exact accuracy against test-time segments, ACT families), `final.png` (final held-out exact
accuracy per task and family, mean over seeds with min-max error bars; the seed count in the label).
"""

from __future__ import annotations

import json
import math
import os
import statistics

from hrm_jax.report import read_jsonl

RESULTS = "RESULTS.md"


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect(out: str, runs) -> list[dict]:
    """One record per declared run that has a study.json: plan, stages, evals and its metrics."""
    from benchmarks.study import run_dir, stages_of  # noqa: PLC0415

    records = []
    for run in runs:
        workdir = run_dir(out, run)
        state = _read_json(os.path.join(workdir, "study.json"))
        if not state.get("plan"):
            continue
        metrics_path = os.path.join(workdir, "pretrain" if run.task.kind == "code" else "", "metrics.jsonl")
        rec = {"run": run, "plan": state["plan"], "stages": state.get("stages", {}), "evals": state.get("evals", {}),
               "metrics": read_jsonl(metrics_path), "metrics_path": metrics_path,
               "done": all(state.get("stages", {}).get(s, {}).get("done") for s in stages_of(run))}
        if run.task.kind == "code":
            rec["code_summary"] = _read_json(os.path.join(workdir, "eval", "mbpp_test", "summary.json"))
            rec["refine_summary"] = _read_json(os.path.join(workdir, "eval", "mbpp_test", "refine_summary.json"))
            rec["corpus_manifest"] = _read_json(os.path.join(workdir, "pretrain", "python_corpus", "manifest.json"))
        records.append(rec)
    return records


def final_eval(rec: dict) -> dict:
    """The last eval record of the run's metrics.jsonl (the trainer's end-of-training evaluation)."""
    evals = [m for m in rec["metrics"] if any(k.startswith("eval/") for k in m)]
    return evals[-1] if evals else {}


def _label(family: str) -> str:
    from benchmarks.study import FAMILY_LABEL  # noqa: PLC0415

    return FAMILY_LABEL.get(family, family)


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} (n={len(values)})"


def _fmt_flops(x) -> str:
    return "-" if x is None else f"{x / 1e12:.3g} TFLOP"


def _wall(rec: dict, stage: str = "train") -> float:
    return float(rec["stages"].get(stage, {}).get("seconds", 0.0))


def _groups(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["plan"]["task"], rec["plan"]["family"]), []).append(rec)
    return groups


def _ref(recs: list[dict]) -> str:
    return ", ".join(f"`{r['plan']['name']}`" for r in recs)


def headline_table(records: list[dict]) -> list[str]:
    lines = ["| task | family | params | training FLOPs | steps | train wall (mean) | held-out exact acc | "
             "held-out cell acc | held-out fill acc | runs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (task, family), recs in _groups(records).items():
        if recs[0]["run"].task.kind != "puzzle":
            continue
        done = [r for r in recs if r["done"]]
        finals = [final_eval(r) for r in done]
        exact = [f["eval/exact_accuracy"] for f in finals if "eval/exact_accuracy" in f]
        cell = [f["eval/accuracy"] for f in finals if "eval/accuracy" in f]
        fill = [f["eval/fill_accuracy"] for f in finals if "eval/fill_accuracy" in f]
        p = recs[0]["plan"]
        wall = statistics.mean(_wall(r) for r in recs)
        lines.append(f"| {task} | {_label(family)} | {p['params']:,} | {_fmt_flops(p['train_flops'])} | "
                     f"{p['steps']:,} | {wall / 60:.1f} min | {_mean_spread(exact)} | {_mean_spread(cell)} | {_mean_spread(fill)} | "
                     f"{_ref(recs)}{'' if len(done) == len(recs) else ' (unfinished: %d)' % (len(recs) - len(done))} |")
    return lines


def bits_per_byte(loss_nats_per_token, manifest: dict, split: str = "validation") -> float | None:
    """Held-out loss in bits per byte: nats/token / ln 2 x the split's tokens per byte (the corpus manifest's counts
    under the run's tokenizer). Approximate: the loss is over the eval batches' packed rows, the ratio over the
    whole split."""
    s = (manifest.get("splits") or {}).get(split) or {}
    if loss_nats_per_token is None or not s.get("tokens") or not s.get("bytes"):
        return None
    return loss_nats_per_token / math.log(2) * s["tokens"] / s["bytes"]


def mbpp_bits_per_byte(test: dict) -> float | None:
    """The MBPP-test loss in bits per byte: nats/token / ln 2 x the targets' tokens (code and </s>) per byte of
    code (the study's `heldout` stage counts both under the run's tokenizer)."""
    if test.get("loss") is None or not test.get("code_bytes"):
        return None
    return test["loss"] / math.log(2) * test["target_tokens"] / test["code_bytes"]


def code_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if r["run"].task.kind == "code"]
    if not rows:
        return []
    lines = ["Held-out corpus loss: the pretrained model on the corpus's held-out files (pretraining's final "
             "evaluation); its bits/byte use the split's tokens per byte. MBPP test loss: the fine-tuned model on "
             "every MBPP test task's code and </s> in the fine-tuning format (the study's `heldout` stage), bits/byte "
             "over those targets' bytes of code. Syntax-valid: completions that compile and hold a statement. pass@1: "
             "greedy, one sample per task on the recipe's MBPP test tasks; after refinement: the same tasks after "
             "up to that many rounds of execution feedback (evals.refine). Wall: the recipe's wall time.", "",
             "| family | params | pretraining FLOPs | steps | wall | held-out corpus loss (nats/token) | "
             "held-out corpus bits/byte | MBPP test loss (nats/token) | MBPP test bits/byte | syntax-valid | "
             "pass@1 (samples) | pass@1 after refinement (rounds) | run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for rec in rows:
        p, s = rec["plan"], rec.get("code_summary") or {}
        pre, test = final_eval(rec), (rec.get("evals") or {}).get("mbpp_test") or {}
        pk = (s.get("pass_at_k") or {}).get("pass@1")
        ref = rec.get("refine_summary") or {}
        refined = "-" if "pass@1_refined" not in ref else f"{ref['pass@1_refined']:.3f} ({ref['rounds']})"
        lines.append(f"| {_label(p['family'])} | {p['params']:,} | {_fmt_flops(p['train_flops'])} | {p['steps']:,} | "
                     f"{_wall(rec) / 60:.1f} min | {pre.get('eval/loss', float('nan')):.4f} | "
                     f"{_num(bits_per_byte(pre.get('eval/loss'), rec.get('corpus_manifest') or {}))} | "
                     f"{_num(test.get('loss'))} | {_num(mbpp_bits_per_byte(test))} | "
                     f"{s.get('syntax_valid_rate', float('nan')):.3f} | "
                     f"{'-' if pk is None else f'{pk:.3f}'} ({s.get('num_samples', 0)}) | {refined} | {_ref([rec])} |")
    return lines


TARGET_EXACT = 0.3  # the bar: >= 30% held-out exact accuracy


def budget_estimate(rec: dict) -> dict | None:
    """What budget would reach TARGET_EXACT on a blanked-Sudoku run, from its own learning curve: exact accuracy
    ~ fill_accuracy ** blanks if cells were independent, so the target needs fill accuracy TARGET ** (1 / blanks);
    fill accuracy is fitted as a + b * log10(step) over the second half of the run's evaluations and the fit solved
    for that accuracy. An extrapolation with stated assumptions (errors within a puzzle are correlated; curves
    bend), not a measurement."""
    blanks = rec["run"].task.data.get("data.generate_num_blanks")
    points = [(m["step"], m["eval/fill_accuracy"]) for m in rec["metrics"] if "eval/fill_accuracy" in m]
    if not blanks or len(points) < 4:
        return None
    final = points[-1][1]
    tail = points[len(points) // 2:]
    xs, ys = [math.log10(st) for st, _ in tail], [acc for _, acc in tail]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    need = TARGET_EXACT ** (1.0 / blanks)
    out = {"blanks": blanks, "final_fill": final, "predicted_exact": final ** blanks, "needed_fill": need,
           "slope_per_decade": slope, "steps": points[-1][0]}
    if slope > 0:
        out["multiplier"] = 10 ** ((need - (my - slope * mx)) / slope) / points[-1][0]
    return out


def budget_table(records: list[dict]) -> list[str]:
    rows = [(r, budget_estimate(r)) for r in records if r["done"] and r["run"].task.kind == "puzzle"]
    rows = [(r, e) for r, e in rows if e]
    if not rows:
        return []
    lines = [f"Exact accuracy ~ fill ** blanks if a puzzle's cells were independent, so {TARGET_EXACT:.0%} exact needs "
             f"fill accuracy {TARGET_EXACT:.1f} ** (1 / blanks). Fill accuracy fitted as a + b log10(step) over "
             "the second half of each run's evaluations, solved for that accuracy: an extrapolation, not a "
             "measurement (errors within a puzzle are correlated, curves bend).", "",
             "| run | blanks | final fill acc | fill ** blanks | measured exact | fill acc needed | "
             "fill gain per 10x steps | budget for 30% exact |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rec, e in rows:
        exact = final_eval(rec).get("eval/exact_accuracy", 0.0)
        if "multiplier" not in e:
            budget = "no gain in the fit"
        elif exact >= TARGET_EXACT:
            budget = "reached (measured)"
        elif e["multiplier"] > 1000:
            budget = "> 1000x (the fit is nearly flat)"
        else:
            budget = f"~{e['multiplier']:.1f}x ({e['multiplier'] * e['steps']:,.0f} steps)"
        lines.append(f"| {_ref([rec])} | {e['blanks']} | {e['final_fill']:.4f} | {e['predicted_exact']:.4f} | "
                     f"{exact:.4f} | {e['needed_fill']:.4f} | {e['slope_per_decade']:+.4f} | {budget} |")
    return lines


def _num(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _fill(row: dict) -> str:
    """Accuracy on the cells to fill in (`fill_accuracy`); runs evaluated before it existed show '-'."""
    return _num(row.get("fill_accuracy"))


def halting_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if (r["evals"] or {}).get("halting")]
    if not rows:
        return []
    lines = ["| run | adaptive exact acc | adaptive fill acc | adaptive mean segments | fixed exact acc | "
             "fixed fill acc | fixed segments | test examples |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rec in rows:
        a, f = rec["evals"]["halting"]["adaptive"], rec["evals"]["halting"]["fixed"]
        lines.append(f"| {_ref([rec])} | {a['exact_accuracy']:.4f} | {_fill(a)} | {a['mean_segments']:.2f} | "
                     f"{f['exact_accuracy']:.4f} | {_fill(f)} | {f['mean_segments']:.2f} | "
                     f"{int(a['count'])} |")
    return lines


def depth_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if (r["evals"] or {}).get("depth")]
    if not rows:
        return []
    mults = sorted({row["multiplier"] for r in rows for row in r["evals"]["depth"]["rows"]})
    lines = ["| run | training segments | " + " | ".join(f"{m}x exact (fill)" for m in mults) + " | how |",
             "|---|---:|" + "---:|" * len(mults) + "---|"]
    for rec in rows:
        d = rec["evals"]["depth"]
        by = {row["multiplier"]: row for row in d["rows"]}
        cells = [f"{by[m]['exact_accuracy']:.4f} ({_fill(by[m])})" if m in by else "-" for m in mults]
        lines.append(f"| {_ref([rec])} | {d['train_segments']} | " + " | ".join(cells) + f" | {d['via']} |")
    return lines


def provenance(records: list[dict]) -> list[str]:
    lines = []
    for rec in records:
        p = rec["plan"]
        lines.append(f"### {p['name']}")
        lines.append("")
        for stage, s in rec["stages"].items():
            lines.append(f"- {stage}: {'done' if s.get('done') else 'NOT done'}, {s.get('seconds', 0):.1f} s wall over "
                         f"{s.get('attempts', 0)} attempt(s), commit `{s.get('commit', '?')}`, machine: "
                         f"{s.get('machine', '?')}")
        lines.append(f"- config `{p['config']}`; params {p['params']:,}; {p['flops_per_step'] / 1e9:.4g} GFLOP per "
                     f"training step x {p['steps']:,} steps = {_fmt_flops(p['train_flops'])} (budget "
                     f"{_fmt_flops(p['budget_flops'])}); metrics: `{rec['metrics_path']}`")
        lines.append(f"- command: `python {' '.join(p['command'][1:])}`")
        lines.append("")
    return lines


# ----- figures ------------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


# (metrics key, axis label, title, y limits) of each held-out panel beside the training loss, per task kind.
CURVE_PANELS = {
    "puzzle": (("eval/exact_accuracy", "held-out exact accuracy", "held-out exact accuracy", (-0.02, 1.02)),
               ("eval/accuracy", "held-out cell accuracy", "held-out cell accuracy", (-0.02, 1.02)),
               ("eval/fill_accuracy", "held-out fill accuracy", "accuracy on the cells to fill in", (-0.02, 1.02))),
    "code": (("eval/loss", "held-out loss (nats/token)", "held-out corpus loss", None),
             ("eval/token_accuracy", "held-out next-token accuracy", "held-out next-token accuracy", None)),
}


def curves_figure(records: list[dict], task: str, path: str) -> str | None:
    """Training loss and the task kind's held-out metrics (CURVE_PANELS) against training FLOPs, a line per run
    (code runs: their pretraining, where the FLOPs budget is spent)."""
    recs = [r for r in records if r["plan"]["task"] == task and r["metrics"]]
    if not recs:
        return None
    panels = CURVE_PANELS[recs[0]["run"].task.kind]
    plt = _plt()
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(4.75 * (1 + len(panels)), 4))
    for rec in recs:
        fps, label = rec["plan"]["flops_per_step"], f"{_label(rec['plan']['family'])} s{rec['plan']['seed']}"
        train = [(m["step"] * fps / 1e12, m["train/loss"]) for m in rec["metrics"] if "train/loss" in m]
        line = axes[0].plot(*zip(*train), label=label)[0] if train else None
        for ax, (key, *_) in zip(axes[1:], panels):
            ev = [(m["step"] * fps / 1e12, m[key]) for m in rec["metrics"] if key in m]
            if ev:
                ax.plot(*zip(*ev), marker="o", label=label, color=line.get_color() if line else None)
    axes[0].set(xlabel="training TFLOPs", ylabel="train loss", title=f"{task}: training loss")
    for ax, (_, ylabel, title, ylim) in zip(axes[1:], panels):
        ax.set(xlabel="training TFLOPs", ylabel=ylabel, title=f"{task}: {title}")
        if ylim:
            ax.set_ylim(*ylim)
    return _save(fig, axes, path)


def _save(fig, axes, path: str, shared_legend: bool = False) -> str:
    """Grid and legend on every axis (`shared_legend`: one legend right of the axes, for many lines), then the
    PNG at `path` (the figure is closed)."""
    for ax in axes:
        ax.grid(alpha=0.3)
        if not shared_legend:
            ax.legend(fontsize=8)
    fig.tight_layout()
    if shared_legend:
        fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return path


def depth_figure(records: list[dict], path: str) -> str | None:
    recs = [r for r in records if (r["evals"] or {}).get("depth")]
    if not recs:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.get_cmap("tab20")
    for i, rec in enumerate(recs):  # a colour per run (tab20: distinct for up to 20 runs)
        rows = rec["evals"]["depth"]["rows"]
        label = f"{rec['plan']['task']} {_label(rec['plan']['family'])} s{rec['plan']['seed']}"
        for ax, key in zip(axes, ("exact_accuracy", "fill_accuracy")):
            ax.plot([r["segments"] for r in rows], [r.get(key, r["accuracy"]) for r in rows], marker="o", label=label,
                    color=colors(i % 20))
    for ax, what in zip(axes, ("exact", "fill")):
        ax.set(xlabel="test-time segments (fixed; the first point is training's halt_max_steps)",
               ylabel=f"held-out {what} accuracy", title=f"{what} accuracy vs test-time depth", ylim=(-0.02, 1.02))
    return _save(fig, axes, path, shared_legend=True)


def final_figure(records: list[dict], path: str) -> str | None:
    bars = []
    for (task, family), recs in _groups(records).items():
        finals = [final_eval(r) for r in recs if r["done"]]
        finals = [f for f in finals if "eval/exact_accuracy" in f]
        if finals and recs[0]["run"].task.kind == "puzzle":
            bars.append((f"{task}\n{_label(family)}\n(n={len(finals)})", finals))
    if not bars:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(max(9, 2.2 * len(bars)), 4.5))
    for ax, key, what in zip(axes, ("eval/exact_accuracy", "eval/fill_accuracy"), ("exact", "fill")):
        values = [[f.get(key, 0.0) for f in finals] for _, finals in bars]
        means = [statistics.mean(v) for v in values]
        err = [[m - min(v) for m, v in zip(means, values)], [max(v) - m for m, v in zip(means, values)]]
        ax.bar(range(len(bars)), means, yerr=err, capsize=4, color="tab:blue" if what == "exact" else "tab:green")
        for i, m in enumerate(means):
            ax.text(i, m, f"{m:.3f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
        ax.set(ylabel=f"held-out {what} accuracy", ylim=(0, 1.0),
               title=f"final held-out {what} accuracy\n(mean over seeds; error bars: min-max)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----- the page -----------------------------------------------------------------------------------------------------
def write(out: str, suite: str, runs, only: str = "") -> str:
    from benchmarks.study import SUITES  # noqa: PLC0415

    records = collect(out, runs)
    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    tasks = list(dict.fromkeys(r["plan"]["task"] for r in records))
    figures = [curves_figure(records, t, os.path.join(fig_dir, f"curves_{t}.png")) for t in tasks]
    figures += [depth_figure(records, os.path.join(fig_dir, "depth.png")),
                final_figure(records, os.path.join(fig_dir, "final.png"))]
    lines = [f"# Study results: suite `{suite}`", "",
             f"Regenerate: `python -m benchmarks.study --suite={suite} --out={out}"
             f"{f' --only={only!r}' if only else ''} --report-only`; rerun what is "
             f"missing: the same without `--report-only`. Every number below comes from the run folders under "
             f"`{out}/runs/`; each row names its runs, whose command, commit, config, wall time and machine are "
             "listed under Provenance.", ""]
    finished = sum(r["done"] for r in records)
    declared = [r for r in runs if not r.task.gpu_only]
    if finished < len(declared):
        lines += [f"**Progress: {finished} of {len(declared)} declared runs finished**; the tables below hold only "
                  "those. The rest: the same command without `--report-only` (finished runs are skipped).", ""]
    scales = sorted({r["plan"].get("budget_scale", 1.0) for r in records})
    if scales != [1.0] and records:
        lines += [f"**Shortened budget**: these runs used {', '.join(f'{x:g}' for x in scales)} x the declared "
                  "budgets (`--budget-scale`); they are not the suite's results.", ""]
    finals = [final_eval(r).get("eval/exact_accuracy") for r in records if r["run"].task.kind == "puzzle"]
    finals = [x for x in finals if x is not None]
    if finals and max(finals) < 0.3:
        lines += [f"No run reached 30% held-out exact accuracy (best {max(finals):.4f}); the learning curves "
                  "(figures) show where each family's held-out accuracy stands at the end of its budget.", ""]
    if suite != "gpu":
        gpu = ", ".join(f"`{t.name}` ({', '.join(_label(f) for f in t.families)})" for t in SUITES["gpu"])
        lines += [f"Paper-scale settings (`--suite=gpu`: {gpu}) are declared for an accelerator and were not run "
                  "here.", ""]
    lines += ["## Tasks (declared in the suite)", ""]
    for task in SUITES[suite]:
        lines.append(f"- `{task.name}` ({task.kind}): {task.note}; budget: the training FLOPs of "
                     f"{task.budget_steps:,} steps of {_label(task.reference)}" if task.budget_steps else
                     f"- `{task.name}` ({task.kind}): {task.note}; the configs' own schedules")
    lines += ["", "## Puzzles: held-out accuracy at equal training FLOPs", "",
              "Held-out = the test split; exact = every cell of the solution right; cell = per-cell accuracy over all "
              "cells (givens included); fill = per-cell accuracy on the cells to fill in (label != input: "
              "Sudoku's blanks, a maze's path); all "
              "from the trainer's final evaluation (metrics.jsonl, fixed halt_max_steps segments). With several "
              "seeds: mean ± standard deviation.", "", *headline_table(records), ""]
    for title, table in (("Adaptive (ACT) vs fixed halting", halting_table(records)),
                         ("Accuracy vs test-time segments", depth_table(records)),
                         ("What budget would reach 30% exact (blanked Sudoku)", budget_table(records)),
                         ("Code: pretraining at equal FLOPs, then MBPP fine-tune", code_table(records))):
        if table:
            lines += [f"## {title}", "", *table, ""]
    lines += ["## Figures", ""] + [f"![{os.path.basename(f)}](figures/{os.path.basename(f)})" for f in figures if f]
    lines += ["", "## Provenance", "", *provenance(records)]
    path = os.path.join(out, RESULTS)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
