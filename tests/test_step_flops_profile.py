"""XLA's cost-analysis FLOPs of the compiled train step beside the formula's, MFU from them, and the profiler
window writing a trace into <workdir>/profile."""

import pathlib
import sys

import jax
import pytest

from hrm_jax import config as config_lib, data as data_lib, families, metrics, parallel, step_memory, train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from configs import mbpp, synthetic  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402


def test_cost_analysis_flops_near_the_formula_for_tiny_hrm_text(tmp_path):
    tok = tmp_path / "code.model"
    session_tokenizer().save(tok)
    c = mbpp.get_config("tiny")
    c.data.tokenizer, c.data.data_dir, c.data.seq_len, c.data.global_batch_size = str(tok), str(data_dir()), 96, 4
    config_lib.validate(c)
    ds, spec = data_lib.build(c, "train", workdir=str(tmp_path))
    family = families.build_family(c, spec.as_dict())
    trainer = train.Trainer(c, family, spec.seq_len, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    state = trainer.init_state()
    compiled = step_memory.compile_step(trainer, state, train.put_batch(trainer, next(iter(ds))))
    xla = step_memory.compiled_flops(compiled)
    formula = family.flops_per_token() * c.data.global_batch_size * spec.seq_len
    assert xla is not None and 0.5 < xla / formula < 2.0, (xla, formula)


def test_mfu_uses_xla_flops_and_keeps_the_formula(monkeypatch):
    monkeypatch.setattr(metrics, "peak_flops_per_device", lambda: 1e12 / jax.device_count())
    meter = metrics.PerfMeter(0, 100, flops_per_step=2e9, xla_flops_per_step=3e9)
    out = meter.report(1)
    assert out["perf/mfu"] / out["perf/mfu_formula"] == pytest.approx(1.5)


def test_profile_window_writes_a_trace(tmp_path):
    c = synthetic.get_config("tiny")
    c.train.steps, c.train.profile_start, c.train.profile_steps = 3, 2, 1
    c.train.checkpoint_every, c.train.eval_batches, c.data.synthetic_size = 0, 1, 64
    config_lib.validate(c)
    train.train_and_evaluate(c, str(tmp_path))
    traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
    assert traces and traces[0].stat().st_size > 0


def test_validate_refuses_a_negative_profile_window():
    c = synthetic.get_config("tiny")
    c.train.profile_steps = -1
    with pytest.raises(config_lib.ConfigError, match="train.profile_steps"):
        config_lib.validate(c)
