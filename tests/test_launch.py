"""Launch scripts fail fast, naming the missing setting, before starting anything."""

import os
import pathlib
import subprocess

import pytest

LAUNCH = pathlib.Path(__file__).resolve().parent.parent / "launch"
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


@pytest.mark.parametrize("script,missing", [
    ("local_multiprocess.sh", "NUM_PROCESSES"),
    ("slurm.sbatch", "usage: sbatch"),
    ("tpu_vm_pod.sh", "TPU_NAME"),
    ("multinode_gpu.sh", "COORDINATOR_ADDRESS"),
])
def test_scripts_fail_fast_on_missing_settings(script, missing):
    proc = subprocess.run(["bash", str(LAUNCH / script)], env=CLEAN_ENV, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_slurm_script_needs_a_slurm_job():
    proc = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "configs/sudoku.py", "/tmp/x"], env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "SLURM_JOB_ID" in proc.stderr


def test_multinode_script_needs_every_setting():
    env = dict(CLEAN_ENV, COORDINATOR_ADDRESS="10.0.0.1:1234", NUM_PROCESSES="2")
    proc = subprocess.run(["bash", str(LAUNCH / "multinode_gpu.sh"), "--config=x"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0 and "PROCESS_ID" in proc.stderr
