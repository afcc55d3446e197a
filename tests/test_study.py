"""The study runner end to end on its toy suite (2 families x 1 Sudoku task, seconds of training per run): an
interrupted run resumes from its checkpoint, a rerun skips finished runs, and RESULTS.md / the figures are written
from the runs' own files (a number changed in a metrics file changes the page)."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks import study, study_report  # noqa: E402


def _records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _final_eval(path):
    return [r for r in _records(path) if "eval/exact_accuracy" in r][-1]


def test_plan_gives_every_family_the_reference_budget(tmp_path):
    for run in study.suite_runs("cpu", "sudoku_easy--*--s0"):
        p = study.plan(str(tmp_path), run)
        ref = study.plan(str(tmp_path), study.Run(run.task, run.task.reference, run.seed))
        assert p["budget_flops"] == ref["train_flops"] == run.task.budget_steps * ref["flops_per_step"]
        assert abs(p["train_flops"] - p["budget_flops"]) <= p["flops_per_step"] / 2  # the nearest step count
        assert f"--config.train.steps={p['steps']}" in p["command"]
    assert [r.name for r in study.suite_runs("toy", "*hrm*,*tf_params*")] == [
        "toy_sudoku--hrm--s0", "toy_sudoku--tf_params--s0"]
    with pytest.raises(SystemExit, match="no run of suite"):
        study.main(["--suite=toy", f"--out={tmp_path}", "--only=nothing*"])


def test_toy_study_resumes_skips_and_reports_from_the_run_files(tmp_path, capsys):
    out = str(tmp_path / "study")
    runs = study.suite_runs("toy")
    hrm = next(r for r in runs if r.family == "hrm")
    p = study.plan(out, hrm)
    workdir = p["workdir"]
    # An interrupted run: the HRM run's own command stopped half-way, with a checkpoint there.
    half = p["steps"] // 2
    subprocess.run(p["command"] + [f"--config.train.steps={half}"], cwd=REPO, check=True, capture_output=True)
    assert study.latest_checkpoint(workdir) == half

    assert study.main(["--suite=toy", f"--out={out}"]) == 0
    assert f"resume at step {half} of {p['steps']}" in pathlib.Path(workdir, "console.txt").read_text()
    steps = [r["step"] for r in _records(os.path.join(workdir, "metrics.jsonl")) if "train/loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == p["steps"]  # each step logged once, to the end
    for run in runs:
        state = json.loads(pathlib.Path(study.run_dir(out, run), "study.json").read_text())
        assert all(s["done"] for s in state["stages"].values())

    # A rerun skips both runs: nothing is trained or evaluated again.
    capsys.readouterr()
    before = {run.name: pathlib.Path(study.run_dir(out, run), "study.json").read_text() for run in runs}
    assert study.main(["--suite=toy", f"--out={out}"]) == 0
    assert capsys.readouterr().out.count("finished before, skipped") == len(runs)
    assert before == {run.name: pathlib.Path(study.run_dir(out, run), "study.json").read_text() for run in runs}

    # The page and figures come from the run folders: the final numbers are the metrics files' own ...
    results = pathlib.Path(out, "RESULTS.md").read_text()
    for run in runs:
        final = _final_eval(os.path.join(study.run_dir(out, run), "metrics.jsonl"))
        row = next(line for line in results.splitlines() if f"`{run.name}`" in line and line.startswith("| toy"))
        assert (f"| {final['eval/exact_accuracy']:.4f} | {final['eval/accuracy']:.4f} | "
                f"{final['eval/fill_accuracy']:.4f} |") in row
    state = json.loads(pathlib.Path(workdir, "study.json").read_text())
    fixed = state["evals"]["halting"]["fixed"]
    assert f"{fixed['exact_accuracy']:.4f} | {fixed['fill_accuracy']:.4f} | {fixed['mean_segments']:.2f}" in results
    one_x = state["evals"]["depth"]["rows"][0]
    assert one_x["segments"] == fixed["mean_segments"] and one_x["accuracy"] == pytest.approx(fixed["accuracy"])
    assert "python -m hrm_jax.main --config=configs/sudoku.py:tiny" in results and "commit `" in results
    figures = {f: pathlib.Path(out, "figures", f).read_bytes() for f in ("curves_toy_sudoku.png", "depth.png",
                                                                         "final.png")}
    assert all(data.startswith(b"\x89PNG") for data in figures.values())

    # ... so a changed metrics file changes the page and the figures (--report-only reads, never trains).
    metrics = os.path.join(study.run_dir(out, runs[1]), "metrics.jsonl")
    records = _records(metrics)
    last = max(i for i, r in enumerate(records) if "eval/exact_accuracy" in r)
    records[last]["eval/accuracy"] = 0.123456
    records[last]["eval/exact_accuracy"] = 0.5
    pathlib.Path(metrics).write_text("".join(json.dumps(r) + "\n" for r in records))
    assert study.main(["--suite=toy", f"--out={out}", "--report-only"]) == 0
    assert "| 0.5000 | 0.1235 |" in pathlib.Path(out, "RESULTS.md").read_text()
    for name in ("curves_toy_sudoku.png", "final.png"):
        assert pathlib.Path(out, "figures", name).read_bytes() != figures[name]
    assert study_report.final_eval(study_report.collect(out, runs[1:])[0])["eval/exact_accuracy"] == 0.5


def test_bits_per_byte_is_the_loss_in_bits_times_the_splits_tokens_per_byte():
    manifest = {"splits": {"validation": {"tokens": 1000, "bytes": 3000}}}
    assert study_report.bits_per_byte(2.0, manifest) == pytest.approx(2.0 / 0.6931471805599453 / 3.0)
    assert study_report.bits_per_byte(2.0, {}) is None and study_report.bits_per_byte(None, manifest) is None


def test_budget_estimate_solves_the_log_linear_fit_for_the_needed_fill_accuracy():
    run = next(r for r in study.suite_runs("cpu", "sudoku_easy--hrm--s0"))
    blanks = run.task.data["data.generate_num_blanks"]
    steps = [250, 500, 1000, 2000, 4000, 8000]
    metrics = [{"step": st, "eval/fill_accuracy": 0.5 + 0.1 * math.log10(st)} for st in steps]
    est = study_report.budget_estimate({"run": run, "metrics": metrics})
    need = 0.3 ** (1 / blanks)
    assert est["needed_fill"] == pytest.approx(need) and est["slope_per_decade"] == pytest.approx(0.1)
    assert est["multiplier"] * 8000 == pytest.approx(10 ** ((need - 0.5) / 0.1), rel=1e-9)
    assert est["predicted_exact"] == pytest.approx((0.5 + 0.1 * math.log10(8000)) ** blanks)
    flat = study_report.budget_estimate({"run": run, "metrics": [dict(m, **{"eval/fill_accuracy": 0.4})
                                                                 for m in metrics]})
    assert "multiplier" not in flat
    hard = next(r for r in study.suite_runs("cpu", "sudoku_hard--hrm--s0"))
    assert study_report.budget_estimate({"run": hard, "metrics": metrics}) is None  # no blank count to solve for


def test_every_cpu_run_command_parses_to_its_overrides(tmp_path):
    """Each run's command line, read by the main command's own flag parser, sets exactly the values the plan
    holds (a tuple of strings, e.g. the code runs' recipe.stages, was read as one string before)."""
    script = ("import sys, json; from absl import flags; from ml_collections import config_flags\n"
              "c = config_flags.DEFINE_config_file('config'); flags.FLAGS(sys.argv)\n"
              "print(c.value.seed); print(json.dumps(list(c.value.recipe.stages)) if 'recipe' in c.value else 'null')")
    for run in study.suite_runs("cpu", "code--*--s0,maze_12--hrm--s0"):
        p = study.plan(str(tmp_path), run)
        args = [a for a in p["command"][3:] if not a.startswith("--workdir")]
        out = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.splitlines()
        assert int(out[0]) == run.seed
        if run.task.kind == "code":
            assert json.loads(out[1]) == ["pretrain", "finetune", "eval", "report"], run.name
            assert study._run_config(p).recipe.stages == ("pretrain", "finetune", "eval", "report")


def test_code_table_reads_each_runs_own_files(tmp_path):
    """The code table's numbers come from the run folder: pretraining's eval loss, the heldout stage's MBPP-test
    loss and counts, the eval summary (syntax-valid rate, pass@1, samples) and the refinement summary."""
    run = study.suite_runs("cpu", "code--code_trm--s0")[0]
    workdir = pathlib.Path(study.run_dir(str(tmp_path), run))
    (workdir / "pretrain" / "python_corpus").mkdir(parents=True)
    (workdir / "eval" / "mbpp_test").mkdir(parents=True)
    p = {"name": run.name, "family": run.family, "params": 786690, "train_flops": 8.2e12, "steps": 212}
    files = {
        "study.json": {"plan": p, "stages": {"train": {"done": True, "seconds": 600.0}},
                       "evals": {"mbpp_test": {"loss": 3.0, "target_tokens": 200, "code_bytes": 500}}},
        "pretrain/python_corpus/manifest.json": {"splits": {"validation": {"tokens": 100, "bytes": 300}}},
        "eval/mbpp_test/summary.json": {"pass_at_k": {"pass@1": 0.04}, "num_samples": 50, "syntax_valid_rate": 0.25},
        "eval/mbpp_test/refine_summary.json": {"pass@1": 0.04, "pass@1_refined": 0.06, "rounds": 2},
    }
    for name, value in files.items():
        (workdir / name).write_text(json.dumps(value))
    (workdir / "pretrain" / "metrics.jsonl").write_text(json.dumps({"step": 212, "eval/loss": 4.25}) + "\n")
    row = study_report.code_table(study_report.collect(str(tmp_path), [run]))[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:] == ["786,690", "8.2 TFLOP", "212", "10.0 min", "4.2500",
                         f"{4.25 / math.log(2) / 3:.4f}", "3.0000", f"{3.0 / math.log(2) * 200 / 500:.4f}", "0.250",
                         "0.040 (50)", "0.060 (2)", f"`{run.name}`"]


def test_code_heldout_evaluates_the_fine_tuned_model_on_every_mbpp_test_task(tmp_path):
    """The code runs' `heldout` stage: the run's own checkpoint restored, every one of MBPP's 500 test tasks
    evaluated (each target token of code and </s> counted once: no batch limit, nothing dropped), and the
    target tokens and bytes of code that bits per byte needs."""
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: PLC0415

    tokenizer = tmp_path / "code.model"
    session_tokenizer().save(tokenizer)
    workdir = tmp_path / "run"
    overrides = {"data.tokenizer": str(tokenizer), "data.data_dir": str(data_dir()), "data.seq_len": 1024,
                 "train.steps": 2, "train.checkpoint_every": 2}
    p = {"config": "configs/mbpp.py:tiny", "overrides": overrides, "workdir": str(workdir)}
    subprocess.run([sys.executable, "-m", "hrm_jax.main", "--config=configs/mbpp.py:tiny", f"--workdir={workdir}",
                    "--config.mode=train", *(f"--config.{k}={v}" for k, v in overrides.items())], cwd=REPO,
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": ""})
    test = study.code_heldout(p)["mbpp_test"]
    assert test["tasks"] == 500 and test["step"] == 2 and math.isfinite(test["loss"]) and test["loss"] > 0
    assert test["loss_tokens"] == test["target_tokens"] > 0  # seq_len 1024: no example is cut into pieces
    assert 0.05 < test["target_tokens"] / test["code_bytes"] < 1.0
