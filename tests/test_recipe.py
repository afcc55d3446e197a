"""The code recipe from the entry point: `python -m hrm_jax.main --config=configs/mbpp.py:tiny` runs pretrain,
fine-tune, eval, export and report; SIGTERM during compilation exits 0 at once and the rerun resumes; a finished
recipe only prints its summary. Plus the stage configs and the platform's scale."""
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from configs import mbpp
from hrm_jax import recipe
from tests.fixtures_tokenizer import data_dir, session_tokenizer

REPO = pathlib.Path(__file__).resolve().parent.parent


def test_platform_scale_without_jax():
    assert recipe.detect_platform({"JAX_PLATFORMS": "cpu"}) == ("cpu", "JAX_PLATFORMS=cpu")
    scale, reason = recipe.detect_platform({})
    assert scale in ("cpu", "gpu", "pod") and reason
    for variant in mbpp.SCALES:
        c = mbpp.get_config(variant)
        assert c.recipe.scale == variant and variant in c.recipe.scale_reason and c.mode == "recipe"
    assert mbpp.get_config("gpu").model.hrm_text.preset == "code-30m"
    assert mbpp.get_config("pod").model.hrm_text.preset == "code-100m"
    with pytest.raises(ValueError, match="unknown variant 'huge'"):
        mbpp.get_config("huge")


def test_stage_configs_share_the_model_and_differ_where_the_pretrain_node_says(tmp_path):
    c = mbpp.get_config("cpu")
    pre, ft = recipe.pretrain_config(c), recipe.finetune_config(c, str(tmp_path))
    assert pre.model.to_dict() == ft.model.to_dict()
    assert (pre.data.kind, ft.data.kind) == ("python_corpus", "mbpp")
    assert pre.train.steps == c.pretrain.train.steps and ft.train.steps == c.train.steps
    assert pre.mode == ft.mode == "train" and not pre.init_from
    assert ft.init_from == str(tmp_path / "pretrain" / "checkpoints")
    c.unlock()
    c.pretrain.train.stepz = 3
    with pytest.raises(KeyError, match="config.pretrain.train.stepz"):
        recipe.pretrain_config(c)


def _main(workdir, tokenizer, **kw):
    overrides = {"data.tokenizer": tokenizer, "data.data_dir": data_dir(), "pretrain.train.steps": 6,
                 "pretrain.train.checkpoint_every": 3, "train.steps": 4, "train.checkpoint_every": 2,
                 "train.log_every": 2, "eval.limit": 2, "eval.max_new_tokens": 8, "eval.refine_rounds": 1}
    cmd = [sys.executable, "-m", "hrm_jax.main", "--config=configs/mbpp.py:tiny", f"--workdir={workdir}",
           *(f"--config.{k}={v}" for k, v in overrides.items())]
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_tiny_recipe_end_to_end_resumes_after_sigterm_and_then_only_summarizes(tmp_path):
    tokenizer = tmp_path / "code.model"
    session_tokenizer().save(tokenizer)
    workdir = tmp_path / "run"

    # 1. SIGTERM while the pretraining step compiles: exit 0 within 10 s, saying how to resume.
    proc = _main(workdir, tokenizer)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "compiling the train step" in line:
            break
    else:
        pytest.fail("".join(seen) + proc.stdout.read())
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10 and proc.returncode == 0, "".join(seen) + rest
    state = json.loads((workdir / "recipe.json").read_text())
    assert not state["stages"]["pretrain"]["done"]

    # 2. The same command resumes and finishes every stage.
    proc = _main(workdir, tokenizer)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert "stage pretrain: resuming" in err and "stage report: done" in err
    assert "Orbax" not in err and "trainer_interface" not in err  # library output is in the log only
    assert "step 6/6" in err and "checkpoint step 3 ->" in err and "compiled the train step in" in err
    stages = json.loads((workdir / "recipe.json").read_text())["stages"]
    assert [s for s in stages] == ["pretrain", "finetune", "eval", "export", "report"]
    assert all(s["done"] and s["seconds"] >= 0 for s in stages.values())
    assert stages["pretrain"]["result"]["steps"] == 6 and stages["finetune"]["result"]["steps"] == 4
    assert math.isfinite(stages["finetune"]["result"]["final_loss"])
    assert stages["eval"]["result"]["num_tasks"] == 2 and 0.0 <= stages["eval"]["result"]["pass_at_k"]["pass@1"] <= 1
    refined = stages["eval"]["result"]["refine"]  # eval.refine_rounds=1: pass@1 before and after one round
    assert refined["rounds"] == 1 and len(refined["pass@1_by_round"]) == 2
    assert (workdir / "eval" / "mbpp_test" / "refine_summary.json").exists()
    assert pathlib.Path(stages["export"]["result"]["path"]).stat().st_size > 0
    report = (workdir / "report.md").read_text()
    assert "| pass@1 |" in report and "95% CI" in report and "Task " in report and "verdict" in report
    for png in ("loss.png", "tokens_per_s.png", "pass_at_k.png"):
        assert (workdir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (workdir / "tokenizer").exists() is False  # the given tokenizer is used, not copied

    # 3. A finished recipe only prints the summary.
    proc = _main(workdir, tokenizer)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "recipe in" in err and "pass@1" in err and "compiling" not in err and "stage " not in err


def test_unknown_override_is_one_line_naming_the_key(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hrm_jax.main", "--config=configs/mbpp.py:tiny",
                           f"--workdir={tmp_path}", "--config.train.stepz=3"], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --config.train.stepz: no such config field (did you mean --config.train.steps?)"


def test_sigterm_during_long_interruptible_work_exits_0_within_seconds():
    code = ("import time\nfrom hrm_jax.preemption import run_interruptible\n"
            "print('ready', flush=True)\n"
            "run_interruptible(lambda: time.sleep(120), 'the evaluation', 'rerun to go on')\n"
            "print('not reached')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - sent < 10
    assert "SIGTERM during the evaluation: rerun to go on" in err and "not reached" not in out
