"""Code training through the one train step: HRM-Text (default for code) and the causal HRM on packed MBPP
batches; init_from a Hugging Face folder written by transformers."""

import pathlib
import sys

import jax
from flax import nnx
import numpy as np
import pytest

from hrm_jax import checkpoint as ckpt_lib
from hrm_jax import config as config_lib, data as data_lib, families, parallel, resume, train
from hrm_jax.model.hrm_text import HrmTextConfig

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from configs import mbpp  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "code.model"
    session_tokenizer().save(path)
    return str(path)


def _config(tokenizer_file, family):
    c = mbpp.get_config("tiny")
    c.data.tokenizer = tokenizer_file
    c.data.data_dir = str(data_dir())
    c.data.seq_len = 96
    c.model.family = family
    c.optim.lr_warmup_steps = 1
    config_lib.validate(c)
    return c


def _run(config, workdir, steps):
    train_ds, spec = data_lib.build(config, "train", workdir=str(workdir))
    family = families.build_family(config, spec.as_dict())
    trainer = train.Trainer(config, family, spec.seq_len, parallel.make_mesh((1, 1, 1), jax.devices()[:1]))
    it = iter(train_ds)
    manager = ckpt_lib.CheckpointManager.for_run(str(workdir), config)
    state = resume.restore_or_init(manager, trainer, it, ckpt_lib.run_fingerprint(config, family, spec.as_dict()))
    manager.close()
    initial_model = trainer.model(jax.device_get(state))
    losses = []
    first = next(it)
    for _ in range(steps):  # the same batch again and again: the loss must fall
        with jax.set_mesh(trainer.mesh):
            state, m = trainer.train_step(state, train.put_batch(trainer, first))
        losses.append(float(m["loss"]))
    return trainer, state, losses, first, initial_model


@pytest.mark.parametrize("family", ["hrm_text", "hrm"])
def test_code_batches_train_both_families(tokenizer_file, tmp_path, family):
    config = _config(tokenizer_file, family)
    trainer, state, losses, batch, _ = _run(config, tmp_path, 12)
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses
    assert set(batch) >= {"inputs", "targets", "segment_ids", "positions", "loss_mask"}
    assert trainer.family.name == family
    if family == "hrm_text":
        assert state.carry == {} and not jax.tree.leaves(state.puzzle_emb)
    else:
        assert state.carry.inner.z_H.shape[:2] == (config.data.global_batch_size, config.data.seq_len)


def test_hrm_text_is_the_default_code_model():
    c = mbpp.get_config("tiny")
    assert c.model.family == "hrm_text" and c.model.hrm_text.preset == "code-30m"
    assert config_lib.hrm_text_config(c, {"vocab_size": 100, "seq_len": 256}).prefix_lm is False
    c.model.family = "hrm"
    c.model.hrm.causal = False
    with pytest.raises(config_lib.ConfigError, match="config.model.hrm.causal: code data"):
        config_lib.validate(c)


def test_init_from_a_folder_written_by_transformers(tokenizer_file, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = _config(tokenizer_file, "hrm_text")
    _, spec = data_lib.build(config, "train", workdir=str(tmp_path))
    ours: HrmTextConfig = families.build_family(config, spec.as_dict()).model_config
    torch.manual_seed(0)
    hf_config = transformers.HrmTextConfig(**{k: v for k, v in ours.to_hf_dict().items()
                                              if k not in ("architectures", "model_type", "transformers_version",
                                                           "dtype", "num_hidden_layers")})
    hf_model = transformers.HrmTextForCausalLM(hf_config)
    folder = tmp_path / "hf"
    hf_model.save_pretrained(folder)

    config.init_from = str(folder)
    _, _, losses, batch, initial = _run(config, tmp_path / "run", 3)
    ids = np.asarray(batch["inputs"])[:2]
    with torch.no_grad():
        ref_logits = hf_model(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(np.asarray(initial(ids)), ref_logits, atol=1e-4)  # training starts from the folder
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]

    wrong = _config(tokenizer_file, "hrm_text")
    wrong.model.hrm_text.hidden_size = 32
    wrong.model.hrm_text.head_dim = 16
    wrong.init_from = str(folder)
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match="hidden_size: folder 64 vs this run 32"):
        _run(wrong, tmp_path / "wrong", 1)


def test_hrm_text_sharded_forward_and_gradient_equal_single_device(tokenizer_file, tmp_path):
    config = _config(tokenizer_file, "hrm_text")
    train_ds, spec = data_lib.build(config, "train", workdir=str(tmp_path))
    family = families.build_family(config, spec.as_dict())
    batch = next(iter(train_ds))
    results = {}
    for mesh_shape, devices in (((1, 1, 1), jax.devices()[:1]), ((2, 2, 2), None)):
        mesh = parallel.make_mesh(mesh_shape, devices)
        trainer = train.Trainer(config, family, spec.seq_len, mesh)
        state = trainer.init_state()
        gbatch = train.put_batch(trainer, batch)

        def loss_and_grads(state, gbatch, trainer=trainer):
            def loss(params):
                model = nnx.merge(trainer.graphdef, params, state.puzzle_emb, state.buffers)
                return family.train_loss(model, {}, gbatch, None)[0]
            logits = trainer.model(state).segment_logits(gbatch["inputs"], gbatch["segment_ids"], gbatch["positions"])
            return logits, jax.grad(loss)(state.params)

        with jax.set_mesh(mesh):
            logits, grads = jax.jit(loss_and_grads)(state, gbatch)
        results[mesh_shape] = (np.asarray(logits), jax.tree.map(np.asarray, nnx.to_pure_dict(grads)))
        if mesh_shape == (2, 2, 2):  # heads and MLP over `tensor`, embeddings and weights over `fsdp`
            specs = parallel.describe_param_shardings(state.params, mesh)
            assert specs["L_module/layers/0/self_attn/qkv_proj/kernel"] == "P('fsdp', None, 'tensor', None)"
            assert specs["L_module/layers/0/mlp/down_proj/kernel"] == "P('tensor', 'fsdp')"
            assert specs["embed_tokens/embedding"] == "P('tensor', 'fsdp')"
    (l1, g1), (l8, g8) = results[(1, 1, 1)], results[(2, 2, 2)]
    np.testing.assert_allclose(l8, l1, atol=2e-5, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g8)):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_causal_recurrent_eval_reports_held_out_loss(tokenizer_file, tmp_path, family):
    """eval/loss of the causal HRM/TRM (the study's held-out nats per token) is the mean next-token cross-entropy
    of the logits their ACT inference ends with, over the counted tokens: computed here in numpy."""
    from hrm_jax import evaluation  # noqa: PLC0415
    from hrm_jax.model import act  # noqa: PLC0415
    config = _config(tokenizer_file, family)
    train_ds, spec = data_lib.build(config, "train", workdir=str(tmp_path))
    fam = families.build_family(config, spec.as_dict())
    mesh = parallel.make_mesh((1, 1, 1), jax.devices()[:1])
    trainer = train.Trainer(config, fam, spec.seq_len, mesh)
    model = trainer.model(trainer.init_state())
    batch = next(iter(train_ds))
    with jax.set_mesh(mesh):
        got = evaluation.evaluate_model(fam, model, [batch], mesh, config.data.global_batch_size, spec.seq_len)
    data = fam.model_batch(jax.tree.map(jax.numpy.asarray, batch))
    outputs, _ = act.act_infer(model, data, adaptive=fam.eval_adaptive, max_steps=fam.fixed_train_segments)
    logits = np.asarray(outputs["logits"], np.float64)
    labels = np.asarray(data["labels"])
    valid = labels != -100
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0][valid].mean()
    assert valid.sum() > 0 and np.isfinite(got["eval/loss"])
    np.testing.assert_allclose(got["eval/loss"], expected, rtol=1e-5)
