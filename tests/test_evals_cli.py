"""End to end: train a tiny HRM-Text for 2 steps, then `python -m evals.mbpp` / `evals.humaneval` on 3 tasks."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from hrm_jax import config as config_lib, train
from configs import mbpp
from tests.fixtures_tokenizer import data_dir, session_tokenizer

REPO = pathlib.Path(__file__).resolve().parent.parent
STATUSES = {"passed", "failed", "timeout", "error", "killed"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evals_cli")
    tokenizer = root / "code.model"
    session_tokenizer().save(tokenizer)
    overrides = {"data.tokenizer": str(tokenizer), "data.data_dir": str(data_dir()), "data.seq_len": 96,
                 "optim.lr_warmup_steps": 1, "train.steps": 2, "train.eval_batches": 1}
    c = mbpp.get_config("tiny")
    for key, value in overrides.items():
        section, field = key.split(".")
        c[section][field] = value
    config_lib.validate(c)
    workdir = root / "run"
    train.train_and_evaluate(c, str(workdir))
    return workdir, [f"--config.{k}={v}" for k, v in overrides.items()]


def _cli(module, workdir, overrides, out, *extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run([sys.executable, "-m", module, f"--workdir={workdir}", "--config=configs/mbpp.py:tiny",
                           *overrides, "--limit=3", "--max_new_tokens=12", "--batch_size=4", f"--out={out}", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _check(out, ids, rounds=0):
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["task_id"] for r in lines] == ids and all(r["sample"] == 0 and r["of"] == 1 for r in lines)
    assert all(r["status"] in STATUSES and isinstance(r["syntax_ok"], bool) for r in lines)
    assert all(r["status"] == "passed" or r["message"] for r in lines)  # real sandbox verdicts carry a reason
    assert summary["num_tasks"] == 3 and summary["num_samples"] == 3
    assert summary["greedy_pass@1"] == summary["pass_at_k"]["pass@1"]
    assert 0.0 <= summary["pass_at_k"]["pass@1"] <= 1.0 and 0.0 <= summary["syntax_valid_rate"] <= 1.0
    assert sum(summary["status_counts"].values()) == 3 and summary["elapsed_s"] > 0
    return lines, summary


def test_mbpp_cli_end_to_end_with_refinement(run_dir, tmp_path):
    workdir, overrides = run_dir
    out = tmp_path / "mbpp"
    proc = _cli("evals.mbpp", workdir, overrides, out, "--refine_rounds=1")
    _check(out, ["11", "12", "13"])
    refined = json.loads((out / "refine_summary.json").read_text())
    assert refined["num_tasks"] == 3 and refined["rounds"] == 1
    assert refined["pass@1"] <= refined["pass@1_refined"]
    assert "[mbpp_test] 3/3 tasks" in proc.stderr


def test_humaneval_cli_end_to_end(run_dir, tmp_path):
    workdir, overrides = run_dir
    out = tmp_path / "he"
    _cli("evals.humaneval", workdir, overrides, out)
    _check(out, ["HumanEval/0", "HumanEval/1", "HumanEval/2"])


def test_main_eval_mode_runs_the_benchmark(run_dir):
    workdir, overrides = run_dir
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run([sys.executable, "-m", "hrm_jax.main", f"--workdir={workdir}", "--config=configs/mbpp.py:tiny",
                           *overrides, "--config.mode=eval", "--config.eval.benchmark=mbpp", "--config.eval.limit=2",
                           "--config.eval.max_new_tokens=8"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((workdir / "eval" / "mbpp_test" / "summary.json").read_text())
    assert summary["num_tasks"] == 2 and "pass@1" in summary["pass_at_k"]
    assert json.loads((workdir / "eval.json").read_text())["eval/tokens"] > 0  # the loss evaluation ran first


@pytest.mark.parametrize("command", [
    ["evals.puzzles", "--config=configs/sudoku.py:tiny"],
    ["evals.test_time_sweep"],
    ["evals.edits", "--config=configs/edit_actions.py:tiny"],
])
def test_an_evaluation_without_a_checkpoint_says_so_in_one_line(tmp_path, command):
    """The library output (tracebacks included) goes to <workdir>/log.txt; the console still gets the error."""
    workdir = tmp_path / "no_run"
    proc = subprocess.run([sys.executable, "-m", command[0], f"--workdir={workdir}", *command[1:]], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: FileNotFoundError: ") and "no checkpoint" in lines[0]
    assert "Traceback" in (workdir / "log.txt").read_text()
