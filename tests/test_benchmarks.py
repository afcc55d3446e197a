"""Benchmarks stay runnable: a CPU smoke run of the train-throughput script on a tiny config."""

import math
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
import train_throughput  # noqa: E402


def test_train_throughput_smoke(tmp_path):
    out = train_throughput.main(["--config=configs/synthetic.py:tiny", "--steps=2", "--warmup=1",
                                 f"--json={tmp_path / 'r.json'}"])
    assert out["loss_finite"] and out["step_s_median"] > 0 and out["compile_s"] > 0
    assert math.isclose(out["tokens_per_s"], 16 * 16 / out["step_s_median"], rel_tol=1e-6)
    assert out["tflops_per_step"] > 0 and (tmp_path / "r.json").exists()


def test_train_memory_compares_before_and_after(tmp_path):
    import train_memory  # noqa: PLC0415

    results = train_memory.main(["--config=configs/mbpp.py:tiny", "--batch=8", "--seq_len=32", "--steps=0",
                                 f"--json={tmp_path / 'm.json'}"])
    assert [r["variant"] for r in results] == ["before", "after"]
    assert all(r["step_gib"] > 0 and r["temp_gib"] > 0 for r in results), results
    assert (tmp_path / "m.json").exists()


def test_train_throughput_side_by_side_families(capsys):
    out = train_throughput.main(["--config=configs/synthetic.py:tiny", "--steps=1", "--warmup=0",
                                 "--family=hrm,transformer:flops"])
    assert [r["family"] for r in out] == ["hrm", "transformer:flops"]
    assert all(r["loss_finite"] and r["step_s_median"] > 0 for r in out)
    assert "equal flops" in out[1]["sizing"]
    table = capsys.readouterr().out.split("configs/synthetic.py:tiny, batch 16 x seq 16")[1]
    assert "hrm " in table and "transformer:flops" in table and "x first" in table


def test_gguf_cpu_reports_the_childs_own_peak_rss_and_its_documented_quants():
    import resource
    import subprocess

    import gguf_cpu
    import numpy as np

    from hrm_jax.export import gguf_kquants

    ballast = np.ones(300 * 2**20 // 8)  # this process's peak is now > 300 MB  # noqa: F841
    script = gguf_cpu.CHILD.split("t0 = time.perf_counter()")[0] + "print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                 check=True).stdout)
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 1 < child < 100 < parent  # a bare interpreter, not the parent's peak carried across exec
    assert gguf_cpu.DEFAULT_QUANTS == ("f32", "f16", "q8_0", "q4_0", *gguf_kquants.K_QUANTS)
    assert "f32, f16, q8_0, q4_0, and the\nK-quants" in gguf_cpu.__doc__ and "VmHWM" in gguf_cpu.__doc__


def test_train_throughput_reports_xla_flops(tmp_path):
    out = train_throughput.main(["--config=configs/synthetic.py:tiny", "--steps=1", "--warmup=0"])
    assert 0.3 < out["xla_tflops_per_step"] / out["tflops_per_step"] < 3.0, out


def test_scale_measures_a_shape_from_abstract_arrays_and_writes_its_section(tmp_path, monkeypatch):
    import scale  # noqa: PLC0415

    r = scale.measure("code-30m", remat=True, batch=1, seq_len=32, loop=True)
    assert r["remat"] == "on" and r["loop"] == "on" and r["step_gib"] > 0 and r["xla_flops"] > 0 and r["compile_s"] > 0
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Other\n\nkept\n")
    scale.write_section(scale.table([r]), results)
    scale.write_section(scale.table([r, dict(r, remat="off", loop="off")]), results)  # replaced, not appended
    text = results.read_text()
    assert text.count(scale.SECTION) == 1 and "kept" in text and "| code-30m | off | off | 1 |" in text
    # State and batch over 2 (fake CPU) devices: per device, the parameters and optimizer state halve.
    sharded = scale.measure("code-30m", remat=True, batch=2, seq_len=32, loop=True, fsdp=2)
    assert sharded["fsdp"] == 2 and 0.4 < sharded["state_gib"] / r["state_gib"] < 0.6, (sharded, r)
    # FLOPs per device: batch 2 over 2 devices is batch 1's work on each (XLA counts the per-device program).
    assert sharded["formula_flops"] == pytest.approx(r["formula_flops"])
    assert 0.8 < sharded["xla_flops"] / r["xla_flops"] < 1.25, (sharded, r)
