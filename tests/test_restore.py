"""`restore.load_for_inference`: the model a checkpoint holds, weights only, without the training pipeline; export
and eval of a code run whose corpus was deleted after training."""

import json
import pathlib
import shutil
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from hrm_jax import checkpoint as ckpt_lib, config as config_lib, data as data_lib, evaluation, restore, train
from hrm_jax.export import run as export_run

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from configs import pretrain_python  # noqa: E402
from fixtures_tokenizer import session_tokenizer  # noqa: E402
from test_train import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("synthetic")
    config = tiny_config(**{"train.steps": 3, "train.checkpoint_every": 0, "train.eval_batches": 1,
                            "optim.ema_decay": 0.5})
    state = train.train_and_evaluate(config, str(workdir))
    run, _ = train.setup(config, str(workdir))
    run.manager.close()
    return workdir, config, run.trainer, jax.device_get(state)


def test_the_checkpoints_model_with_its_ema_weights_on_the_target_mesh(synthetic_run):
    workdir, config, trainer, state = synthetic_run
    restored = restore.load_for_inference(str(workdir))  # no config: everything from the checkpoint
    assert restored.family == trainer.family and restored.step == 3 and restored.tokenizer is None
    assert restored.config.optim.ema_decay == 0.5
    assert restored.config.model.hrm.hidden_size == config.model.hrm.hidden_size
    want = jax.tree.leaves(nnx.state(trainer.model(state), nnx.Param))
    got = jax.tree.leaves(nnx.state(restored.model, nnx.Param))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # EMA weights, bit for bit
        assert a.sharding.mesh.devices.size == jax.device_count()
    trained = jax.tree.leaves(nnx.state(nnx.merge(trainer.graphdef, state.params, state.puzzle_emb,
                                                  state.buffers), nnx.Param))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(got, trained))
    # the one eval loop over the restored model gives what training's evaluation gave
    test_ds, spec = data_lib.build(restored.config, "test", prepare=False)
    ours = evaluation.evaluate_model(restored.family, restored.model, iter(test_ds), restored.mesh,
                                     config.data.global_batch_size, spec.seq_len, 1)
    test_ds, _ = data_lib.build(config, "test")
    theirs = train.evaluate(trainer, jax.device_put(state, trainer.state_shardings), iter(test_ds), 1)
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_nothing_after_the_checkpoint_imports_the_trainer():
    import ast  # noqa: PLC0415

    for module in ("hrm_jax/restore.py", "hrm_jax/evaluation.py", "hrm_jax/export/run.py", "evals/benchmark.py",
                   "evals/puzzles.py", "evals/model_completion.py", "evals/cli.py", "benchmarks/gguf_cpu.py"):
        imported = set()
        for node in ast.walk(ast.parse((REPO / module).read_text())):
            if isinstance(node, ast.ImportFrom):
                imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        assert not {"hrm_jax.train", "hrm_jax.resume"} & imported, module


def _copy(synthetic_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], workdir)
    return workdir


def test_eval_of_a_step_that_fails_for_another_reason_is_not_called_damaged(synthetic_run, tmp_path, monkeypatch):
    """--config.mode=eval: a restore failing for a reason outside the files (here out of memory) is raised as it
    is, not labelled damaged (nor another step tried); a checkpoint without a stored config is a mismatch."""
    import orbax.checkpoint as ocp  # noqa: PLC0415

    workdir = _copy(synthetic_run, tmp_path)
    caller = config_lib.base_config()
    caller.mode = "eval"

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.50GiB")

    with monkeypatch.context() as m:
        m.setattr(ocp.CheckpointManager, "restore", out_of_memory)
        with pytest.raises(RuntimeError, match="^RESOURCE_EXHAUSTED: Out of memory") as e:
            restore.load_for_inference(str(workdir), caller)
    assert not isinstance(e.value, ckpt_lib.DamagedCheckpointError)
    meta_file = workdir / "checkpoints" / "3" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "config"}))
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match="stores no config / data spec") as e:
        restore.load_for_inference(str(workdir), caller)
    assert "\n" not in str(e.value) and "damaged" not in str(e.value)
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["3"]  # nothing moved or renamed


def test_eval_may_choose_another_attention_implementation(synthetic_run):
    """The attention implementation is a runtime field: not a mismatch with the checkpoint's model."""
    caller = config_lib.base_config()
    caller.model.attention_impl = "xla"
    restored = restore.load_for_inference(str(synthetic_run[0]), caller)
    assert restored.family.model_config.attention_impl == "xla" and restored.step == 3


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        restore.load_for_inference(str(tmp_path))


def _code_config(tokenizer_file):
    c = pretrain_python.get_config("tiny")
    c.data.tokenizer = tokenizer_file
    c.data.seq_len = 64
    c.data.corpus_stdlib_subdirs = ("json", "email")
    c.train.steps = 2
    c.train.checkpoint_every = 0
    c.train.eval_batches = 1
    c.optim.lr_warmup_steps = 1
    config_lib.validate(c)
    return c


def test_export_and_eval_of_a_code_run_whose_corpus_was_deleted(tmp_path):
    tokenizer_file = str(tmp_path / "code.model")
    session_tokenizer().save(tokenizer_file)
    workdir = tmp_path / "run"
    config = _code_config(tokenizer_file)
    train.train_and_evaluate(config, str(workdir))
    shutil.rmtree(workdir / "python_corpus")

    config.mode, config.export.format = "export", "hf"
    out = export_run.export_checkpoint(config, str(workdir))
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()

    config.mode, config.eval.benchmark, config.eval.limit, config.eval.max_new_tokens = "eval", "mbpp", 1, 4
    restored = restore.load_for_inference(str(workdir), config)
    assert restored.tokenizer.fingerprint() == session_tokenizer().fingerprint()
    with pytest.raises(FileNotFoundError, match="python_corpus"):  # a loss eval alone needs the test data
        evaluation.evaluate_restored(restored, str(workdir))
    assert evaluation.evaluate_restored(restored, str(workdir), required=False) == {}
    from evals.benchmark import evaluate_benchmark  # noqa: PLC0415

    result = evaluate_benchmark(restored, str(workdir), config.eval, workers=1)
    assert result["samples"]["num_tasks"] == 1
    assert not (workdir / "python_corpus").exists()  # nothing was rebuilt
    summary = json.loads((workdir / "eval" / "mbpp_test" / "summary.json").read_text())
    assert summary["num_tasks"] == 1 and summary["benchmark"] == "mbpp_test"


def test_families_and_generative_models_satisfy_their_protocols(synthetic_run):
    from hrm_jax import families, generate
    from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

    _, _, trainer, _ = synthetic_run
    assert isinstance(trainer.family, families.Family)
    text = families.HrmTextFamily(HrmTextConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                num_layers_per_stack=1, num_attention_heads=2, head_dim=8))
    assert isinstance(text, families.Family)
    assert isinstance(nnx.eval_shape(lambda: text.build(nnx.Rngs(0))), generate.GenerativeModel)
    assert isinstance(text.build(nnx.Rngs(0)), HrmText)
    assert not isinstance(object(), families.Family)

