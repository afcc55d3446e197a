"""The training system: sharded steps agree across meshes, golden PartitionSpecs, checkpoints (kill -9 resume,
refusal of a foreign checkpoint, fallback from a damaged one), the NaN guard, and 2-process training."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from hrm_jax import config as config_lib
from hrm_jax import data as data_lib
from hrm_jax import families, parallel, train

REPO = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(REPO))
from configs import pretrain_python, synthetic  # noqa: E402


def tiny_config(**overrides):
    c = synthetic.get_config("tiny")
    for key, value in overrides.items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    config_lib.validate(c)
    return c


def _trainer(config, mesh):
    _, spec = data_lib.build(config, "train")
    return train.Trainer(config, families.build_family(config, spec.as_dict()), spec.seq_len, mesh)


def _losses(config, mesh_shape, steps=3, devices=None):
    mesh = parallel.make_mesh(mesh_shape, devices)
    trainer = _trainer(config, mesh)
    ds, _ = data_lib.build(config, "train")
    it = iter(ds)
    state = trainer.init_state()
    out = []
    for _ in range(steps):
        with jax.set_mesh(mesh):
            state, m = trainer.train_step(state, train.put_batch(trainer, next(it)))
        out.append(float(m["loss"]))
    return np.array(out), state


@pytest.fixture(scope="module")
def single_device_run():
    config = tiny_config(**{"model.hrm.halt_exploration_prob": 0.3})
    return config, _losses(config, (1, 1, 1), devices=jax.devices()[:1])


@pytest.mark.parametrize("mesh_shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2)])
def test_same_global_batch_same_loss_on_every_mesh(single_device_run, mesh_shape):
    assert jax.device_count() == 8
    config, (reference, ref_state) = single_device_run
    losses, state = _losses(config, mesh_shape)
    np.testing.assert_allclose(losses, reference, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(jax.device_get(state.carry.halted), jax.device_get(ref_state.carry.halted))
    kernel = state.params["H_level"]["layers"][0]["self_attn"]["qkv_proj"]["kernel"][...]
    assert kernel.sharding.spec == parallel.spec_for(kernel.shape, ("embed", None, "heads", "head_dim"),
                                                     parallel.make_mesh(mesh_shape))
    # The ACT carry is sharded on the batch axis.
    assert state.carry.inner.z_H.sharding.spec[0] == parallel.BATCH_AXES


@pytest.mark.parametrize("mesh_shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2)])
def test_golden_partition_specs(mesh_shape):
    config = tiny_config()
    mesh = parallel.make_mesh(mesh_shape)
    trainer = _trainer(config, mesh)
    specs = {"/".join(map(str, path)): str(var.get_value().spec)
             for part in (trainer.state_shardings.params, trainer.state_shardings.puzzle_emb,
                          trainer.state_shardings.buffers)
             for path, var in __import__("flax").nnx.to_flat_state(part)}
    golden_file = GOLDEN / f"hrm_tiny_param_specs_{'x'.join(map(str, mesh_shape))}.json"
    if os.environ.get("HRM_JAX_UPDATE_GOLDEN"):
        golden_file.parent.mkdir(exist_ok=True)
        golden_file.write_text(json.dumps(specs, indent=1, sort_keys=True) + "\n")
    assert specs == json.loads(golden_file.read_text())


def test_mesh_shape_autofill_and_errors():
    assert parallel.mesh_shape((-1, 2, 1), 8) == (4, 2, 1)
    with pytest.raises(ValueError, match="not divisible"):
        parallel.mesh_shape((-1, 3, 1), 8)
    with pytest.raises(ValueError, match="12 devices"):
        parallel.mesh_shape((2, 3, 2), 8)
    with pytest.raises(ValueError, match="at most one -1"):
        parallel.mesh_shape((-1, -1, 1), 8)


def test_config_validation_names_the_field():
    c = tiny_config()
    c.data.kind = "tfrecords"
    with pytest.raises(config_lib.ConfigError, match="config.data.kind"):
        config_lib.validate(c)
    c = tiny_config()
    c.model.hrm.num_heads = 3
    with pytest.raises(config_lib.ConfigError, match="config.model.*divisible"):
        config_lib.validate(c)


def test_a_setting_hrm_text_ignores_is_refused():
    c = pretrain_python.get_config("tiny")
    config_lib.validate(c)
    c.model.loss_type = "stablemax_cross_entropy"
    with pytest.raises(config_lib.ConfigError, match="config.model.loss_type: 'stablemax_cross_entropy' is ignored"):
        config_lib.validate(c)


# ----- end to end through main -------------------------------------------------------------------------------------

def _main(workdir, *overrides, env=None, wait=True):
    cmd = [sys.executable, "-m", "hrm_jax.main", "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
           "--config.train.log_every=1", *overrides]
    full_env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu",
                **(env or {})}
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def _train_losses(workdir) -> dict[int, float]:
    """step -> train/loss (a step logged twice would keep its last value)."""
    out = {}
    for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "train/loss" in record:
            out[record["step"]] = record["train/loss"]
    return out


def test_kill_9_then_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    n = 150
    args = [f"--config.train.steps={2 * n}", f"--config.train.checkpoint_every={n}", "--config.train.keep_latest=3"]
    rc, out = _main(tmp_path / "straight", *args)
    assert rc == 0, out[-3000:]
    reference = _train_losses(tmp_path / "straight")
    assert sorted(reference) == list(range(1, 2 * n + 1))

    killed = tmp_path / "killed"
    proc = _main(killed, *args, wait=False)
    ckpt = killed / "checkpoints" / str(n)
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{out[-2000:]}"
    assert not (killed / "checkpoints" / str(2 * n)).exists()
    before = _train_losses(killed)
    assert max(before) < 2 * n

    rc, out = _main(killed, *args)
    assert rc == 0, out[-3000:]
    assert f"resumed from {killed / 'checkpoints'}/{n}" in out
    resumed = _train_losses(killed)
    assert resumed == reference  # every step's loss, bit for bit
    logged = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()
              if "train/loss" in line]
    assert logged == list(range(1, 2 * n + 1))  # each step once: the resume dropped what followed step n


def test_foreign_checkpoint_is_refused_and_a_damaged_latest_falls_back(tmp_path):
    rc, out = _main(tmp_path, "--config.train.steps=4", "--config.train.checkpoint_every=2")
    assert rc == 0, out[-3000:]
    rc, out = _main(tmp_path, "--config.train.steps=4", "--config.model.hrm.hidden_size=64")
    assert rc != 0 and "IncompatibleCheckpointError" in out and "model.hidden_size: checkpoint 32 vs this run 64" in out
    # Damage the latest checkpoint's array data: the run warns and resumes from step 2 instead.
    for f in (tmp_path / "checkpoints" / "4" / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "d" in f.parent.name:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    rc, out = _main(tmp_path, "--config.train.steps=6")
    assert rc == 0, out[-3000:]
    assert "checkpoint step 4 is damaged" in out and f"resumed from {tmp_path / 'checkpoints'}/2" in out
    assert (tmp_path / "checkpoints" / "4.damaged").is_dir() and (tmp_path / "checkpoints" / "6").is_dir()


def test_nan_guard_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    # The first update (lr 1e25) wrecks the weights: step 1's loss is finite and checkpointed, step 2's is NaN.
    rc, out = _main(tmp_path, "--config.train.steps=200", "--config.train.checkpoint_every=1",
                    "--config.optim.lr=1e25", "--config.optim.lr_warmup_steps=1")
    assert rc != 0 and "NonFiniteLossError: non-finite loss nan at step 2" in out
    assert "The last good checkpoint (step 1) is kept" in out
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [1]
    assert np.isfinite(_train_losses(tmp_path)[1])


def test_eval_mode_and_unknown_override(tmp_path):
    rc, out = _main(tmp_path, "--config.train.steps=2")
    assert rc == 0, out[-3000:]
    rc, out = _main(tmp_path, "--config.train.steps=2", "--config.mode=eval")
    assert rc == 0, out[-3000:]
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["step"] == 2 and 0 <= result["eval/accuracy"] <= 1
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 2
    rc, out = _main(tmp_path, "--config.model.hrm.hiden_size=4")
    assert rc != 0 and "--config.model.hrm.hiden_size: no such config field" in out and "model.hrm.hidden_size?" in out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_of_four_devices_match_one_process_of_eight(tmp_path):
    args = ["--config.train.steps=3", "--config.train.checkpoint_every=0"]
    env8 = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    rc, out = _main(tmp_path / "single", *args, env=env8)
    assert rc == 0, out[-3000:]
    reference = _train_losses(tmp_path / "single")

    port = _free_port()
    procs = [_main(tmp_path / "multi", *args, "--config.distributed.enabled=True",
                   f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                   "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}",
                   env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}, wait=False) for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, o in zip(procs, outs):
        assert p.returncode == 0, o[-3000:]
    assert "process 0 of 2; 4 local / 8 global devices" in outs[0]
    multi = _train_losses(tmp_path / "multi")
    assert sorted(multi) == [1, 2, 3]
    for step in multi:
        np.testing.assert_allclose(multi[step], reference[step], rtol=1e-6)


def test_main_activations_are_constrained_by_logical_names():
    config = tiny_config()
    mesh = parallel.make_mesh((2, 2, 2))
    trainer = _trainer(config, mesh)
    ds, _ = data_lib.build(config, "train")
    batch = train.put_batch(trainer, next(iter(ds)))
    with jax.set_mesh(mesh):
        text = trainer.train_step.lower(trainer.init_state(), batch).as_text()
    # hidden states [B,S,D] on the batch axes; q/k/v [B,S,N,H] and the MLP width [B,S,I] also over tensor.
    assert '[{"data", "fsdp"}, {}, {}]' in text
    assert '[{"data", "fsdp"}, {}, {"tensor"}, {}]' in text
    assert '[{"data", "fsdp"}, {}, {"tensor"}]' in text


def test_parameter_ema_follows_its_formula_and_is_what_evaluation_uses():
    config = tiny_config(**{"optim.ema_decay": 0.9})
    mesh = parallel.make_mesh((1, 1, 1), jax.devices()[:1])
    trainer = _trainer(config, mesh)
    ds, _ = data_lib.build(config, "train")
    it = iter(ds)
    state = trainer.init_state()
    expected = jax.device_get(state.params)
    for _ in range(3):
        with jax.set_mesh(mesh):
            state, _ = trainer.train_step(state, train.put_batch(trainer, next(it)))
        expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, expected, jax.device_get(state.params))
    for a, b in zip(jax.tree.leaves(jax.device_get(state.ema_params)), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    eval_kernel = trainer.model(state).lm_head.kernel[...]
    np.testing.assert_array_equal(eval_kernel, state.ema_params["lm_head"]["kernel"][...])
    assert not np.array_equal(eval_kernel, state.params["lm_head"]["kernel"][...])


def test_sigterm_saves_a_checkpoint_and_a_rerun_resumes_there(tmp_path):
    proc = _main(tmp_path, "--config.train.steps=100000", "--config.train.checkpoint_every=0", wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (tmp_path / "metrics.jsonl").exists() and (tmp_path / "metrics.jsonl").read_text().count("train/loss") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "SIGTERM: stopped after step" in out
    saved = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(saved) == 1 and 3 <= saved[0] < 100000
    rc, out = _main(tmp_path, f"--config.train.steps={saved[0] + 2}")
    assert rc == 0 and f"resumed from {tmp_path / 'checkpoints'}/{saved[0]}" in out
