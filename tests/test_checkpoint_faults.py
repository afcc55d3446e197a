"""Checkpoint faults as a user meets them: a damaged latest step, every step damaged, a folder that cannot be
written, metrics after a resume. Tiny synthetic runs in this process (one device)."""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time

import jax
import pytest

from hrm_jax import checkpoint as ckpt_lib, metrics as metrics_lib, resume, train

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from test_train import tiny_config  # noqa: E402

STEPS = 4


def _config(**overrides):
    c = tiny_config(**{"train.steps": STEPS, "train.checkpoint_every": 2, "train.keep_latest": 3,
                       "train.eval_batches": 1, "train.log_every": 1, **overrides})
    return c


def _train(workdir):
    return train.train_and_evaluate(_config(), str(workdir))


def _records(workdir) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def _losses(workdir) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in _records(workdir) if "train/loss" in r}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("trained")
    _train(workdir)
    return workdir


def _truncate(path: pathlib.Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _damage_data_files(step_dir: pathlib.Path) -> None:
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d" and f.stat().st_size > 0:
            _truncate(f, 1 / 3)


DAMAGE = {
    "truncated_array_data": _damage_data_files,
    "missing_meta": lambda d: (d / "meta" / "metadata").unlink(),
    "truncated_iterator_json": lambda d: _truncate(d / "data" / "process_0-of-1.json"),
}
NAMED = {"truncated_array_data": "array ", "missing_meta": "meta/metadata",
         "truncated_iterator_json": "data/process_0-of-1.json"}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_latest_falls_back_is_moved_aside_and_the_run_finishes_alike(trained, tmp_path, damage, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    DAMAGE[damage](workdir / "checkpoints" / str(STEPS))
    with caplog.at_level(logging.WARNING):
        state = _train(workdir)
    assert int(state.step) == STEPS
    warnings = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0] and len(warnings[0]) < 500, warnings
    assert f"checkpoint step {STEPS} is damaged" in warnings[0] and NAMED[damage] in warnings[0], warnings[0]
    ckpts = workdir / "checkpoints"
    assert (ckpts / f"{STEPS}.damaged").is_dir() and (ckpts / str(STEPS) / "commit_success.txt").exists()
    assert _losses(workdir) == _losses(trained)  # steps 3 and 4 again, bit for bit, each logged once
    assert [r["step"] for r in _records(workdir) if "train/loss" in r] == list(range(1, STEPS + 1))


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(trained, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    for step in (2, STEPS):
        (workdir / "checkpoints" / str(step) / "meta" / "metadata").unlink()
    before = sorted(os.listdir(workdir / "checkpoints"))
    with pytest.raises(resume.NoRestorableCheckpointError) as e:
        _train(workdir)
    text = str(e.value)
    assert "no checkpoint in" in text and "checkpoint step 4 is damaged" in text and "step 2 is damaged" in text
    assert "meta/metadata" in text
    assert sorted(os.listdir(workdir / "checkpoints")) == before  # nothing moved, nothing saved


def test_a_restore_failing_outside_the_files_is_raised_and_nothing_is_moved(trained, tmp_path, monkeypatch):
    """Out of memory (or any failure that does not point at the step's files) while resuming is not damage: it is
    raised as it is, and no checkpoint is moved aside or skipped."""
    import orbax.checkpoint as ocp  # noqa: PLC0415

    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    before = sorted(os.listdir(workdir / "checkpoints"))

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.50GiB")

    monkeypatch.setattr(ocp.CheckpointManager, "restore", out_of_memory)
    with pytest.raises(RuntimeError, match="^RESOURCE_EXHAUSTED") as e:
        _train(workdir)
    assert not isinstance(e.value, (ckpt_lib.DamagedCheckpointError, resume.NoRestorableCheckpointError))
    assert sorted(os.listdir(workdir / "checkpoints")) == before


def test_another_state_layout_is_refused_naming_the_arrays(trained, tmp_path):
    """A code change that alters the state (here: EMA arrays that the checkpoint lacks) is not damage: refused,
    nothing moved."""
    manager = ckpt_lib.CheckpointManager(str(trained / "checkpoints"), read_only=True)
    run, _ = train.setup(_config(**{"optim.ema_decay": 0.9}), str(tmp_path))
    target = ckpt_lib.abstract_with_shardings(run.trainer.abstract_state, run.trainer.state_shardings)
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match="ema_params.*missing from the checkpoint"):
        manager.check_layout(STEPS, target)
    manager.close()
    run.manager.close()


def test_an_unwritable_checkpoints_folder_fails_at_once_naming_it(tmp_path):
    (tmp_path / "checkpoints").write_text("not a folder")  # root ignores permissions; a file blocks root too
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "hrm_jax.main", "--config=configs/synthetic.py:tiny", f"--workdir={tmp_path}",
         "--config.train.steps=4", "--config.train.checkpoint_every=2"], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu"},
        timeout=120)
    assert time.time() - start < 30
    assert proc.returncode != 0
    assert f"CheckpointSaveError: [Errno 17] cannot write checkpoints to {tmp_path / 'checkpoints'}" in proc.stderr


def test_save_probes_the_folder_each_time(tmp_path):
    manager = ckpt_lib.CheckpointManager(str(tmp_path / "checkpoints"))
    shutil.rmtree(tmp_path / "checkpoints")
    (tmp_path / "checkpoints").write_text("")
    with pytest.raises(ckpt_lib.CheckpointSaveError, match="cannot write checkpoints to .*checkpoints"):
        manager.save(1, {"x": jax.numpy.zeros(2)}, None, {"step": 1})


def test_metrics_are_truncated_to_the_resumed_step_and_tensorboard_is_told(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "train/loss": s}) + "\n" for s in (1, 2, 3, 4))
                    + '{"step": 5, "train/lo')  # a kill -9 mid-line
    writer = metrics_lib.MetricWriter(str(tmp_path), resume_step=2)
    writer.write_scalars(3, {"train/loss": 30.0})
    writer.close()
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    from tensorboardX.proto import event_pb2  # noqa: PLC0415

    events = []
    for f in (tmp_path / "tensorboard").iterdir():  # TFRecords: u64 length, u32 crc, payload, u32 crc
        data, pos = f.read_bytes(), 0
        while pos < len(data):
            n = int.from_bytes(data[pos:pos + 8], "little")
            events.append(event_pb2.Event.FromString(data[pos + 12:pos + 12 + n]))
            pos += 12 + n + 4
    starts = [e for e in events if e.HasField("session_log")]
    assert starts and starts[0].step == 3 and starts[0].session_log.status == event_pb2.SessionLog.START
