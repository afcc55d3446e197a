"""The code recipe, whole: pretrain on the embedded Python corpus, fine-tune on MBPP train, evaluate pass@1
(pass@k where sampled) on the MBPP test split through the sandbox, export a GGUF, write the report.

    python -m hrm_jax.main --config=configs/mbpp.py --workdir=runs/mbpp          # scale from the platform
    python -m hrm_jax.main --config=configs/mbpp.py:cpu --workdir=runs/mbpp_cpu  # 2-core CPU, <= 60 min
    python -m hrm_jax.main --config=configs/mbpp.py:tiny --workdir=/tmp/mbpp_tiny  # 2-core CPU, ~3 min

Stages run in order under one workdir and resume (hrm_jax/recipe.py): `pretrain` trains in <workdir>/pretrain
(tokenizer and corpus built there), `finetune` trains in <workdir> itself from the pretrained parameters, so
`--config.mode=eval|export --workdir=<workdir>` work on the result afterwards; `eval` writes
<workdir>/eval/mbpp_test/, `export` <workdir>/export/gguf/, `report` <workdir>/report.md and its PNGs.

Scale (variant; printed at start with its reason): "" picks from the platform without starting JAX
(`hrm_jax.recipe.detect_platform`): no accelerator -> cpu, one host with accelerators -> gpu (code-30m),
several hosts or >= 8 accelerators -> pod (code-100m). `:cpu`, `:gpu`, `:pod`, `:tiny` pin a scale. Every field
can still be overridden: `--config.train.steps` is the fine-tune's, `--config.pretrain.train.steps` the
pretraining's (the `pretrain` node holds the fields where pretraining differs), `--config.eval.limit` the number
of MBPP test tasks, `--config.recipe.stages` the stages to run. `--config.mode=train` runs the fine-tune alone
(from `--config.init_from`, or from scratch).
"""

import ml_collections

from configs import pretrain_python

SCALES = ("cpu", "gpu", "pod", "tiny")


def get_config(variant: str = ""):
    from hrm_jax.recipe import detect_platform  # noqa: PLC0415 (no JAX: the config is read before it starts)

    if variant in ("", "default"):
        scale, reason = detect_platform()
    elif variant in SCALES:
        scale, reason = variant, f"pinned by the config variant :{variant}"
    else:
        raise ValueError(f"configs/mbpp.py: unknown variant {variant!r} (one of {', '.join(SCALES)}, or none)")

    c = pretrain_python.get_config("default")  # model and optimiser defaults of the code model (code-30m)
    c.mode = "recipe"
    c.data.kind = "mbpp"
    c.data.seq_len = 512
    c.data.global_batch_size = 32
    c.optim.lr = 1e-4
    c.optim.lr_warmup_steps = 100
    c.train.steps = 2000
    c.train.eval_every = 500
    c.train.eval_batches = 0
    c.train.checkpoint_every = 500

    c.recipe = ml_collections.ConfigDict()
    c.recipe.scale = scale
    c.recipe.scale_reason = reason
    c.recipe.stages = ("pretrain", "finetune", "eval", "export", "report")
    c.recipe.report_samples = 4  # generated solutions shown in the report

    # Where pretraining differs from fine-tuning (the model is shared: the fine-tune starts from its parameters).
    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.data = ml_collections.ConfigDict({"kind": "python_corpus", "seq_len": 1024, "global_batch_size": 64})
    c.pretrain.optim = ml_collections.ConfigDict({"lr": 3e-4, "lr_warmup_steps": 1000})
    c.pretrain.train = ml_collections.ConfigDict({"steps": 20_000, "eval_every": 2000, "eval_batches": 20,
                                                   "checkpoint_every": 1000})

    c.eval.benchmark = "mbpp"
    c.eval.split = "test"
    c.eval.n, c.eval.ks, c.eval.temperature = 10, (1, 5, 10), 0.8  # sampled pass@k (greedy pass@1 on CPU)
    c.eval.limit = 0
    c.eval.max_new_tokens = 256
    c.export.format = "gguf"
    c.export.quant = "q8_0"

    if scale == "pod":
        c.model.hrm_text.preset = "code-100m"
        c.data.global_batch_size = 128
        c.pretrain.data.global_batch_size = 256
    elif scale == "cpu":
        shrink_to_cpu(c)
    elif scale == "tiny":
        shrink_to_tiny(c)
    return c


def _greedy(c, limit: int, max_new_tokens: int):
    c.eval.n, c.eval.ks, c.eval.temperature = 1, (1,), 0.0
    c.eval.limit = limit
    c.eval.max_new_tokens = max_new_tokens


def shrink_to_cpu(c):
    """The whole recipe in <= 60 minutes on 2 CPU cores: a 0.98M-parameter HRM-Text (hidden 128, 1 block per
    stack, 2 x 2 cycles) with a 2,048-token tokenizer, pretrained on 2.9M tokens (700 steps of 16 x 256) from a
    standard-library subset, fine-tuned 150 steps on MBPP train, greedy pass@1 on the first 50 MBPP test tasks.
    Small enough to finish (~2.4 s a step on 2 busy cores), large enough that the loss on code falls far below
    its start (see the report); do not expect it to solve MBPP problems."""
    c.model.forward_dtype = "float32"  # bf16 matmuls are slower than fp32 on most CPUs
    c.model.hrm_text.remat = False  # memory is not the limit at this size; recomputation would cost ~30% time
    c.model.hrm_text.hidden_size = 128
    c.model.hrm_text.intermediate_size = 384
    c.model.hrm_text.num_layers_per_stack = 1
    c.model.hrm_text.num_attention_heads = 2
    c.model.hrm_text.head_dim = 64
    c.data.tokenizer_vocab_size = 2048
    c.data.tokenizer_sample_files = 200
    c.data.corpus_stdlib_subdirs = ("json", "email", "logging", "importlib", "urllib", "asyncio", "unittest",
                                    "concurrent", "xml", "http", "collections")
    c.data.corpus_validation_fraction = 0.02
    c.pretrain.data.seq_len = 256
    c.pretrain.data.global_batch_size = 16
    c.pretrain.optim.lr = 2e-3
    c.pretrain.optim.lr_warmup_steps = 50
    c.pretrain.train.steps = 700
    c.pretrain.train.eval_every = 350
    c.pretrain.train.eval_batches = 8
    c.pretrain.train.checkpoint_every = 100
    c.data.seq_len = 256
    c.data.global_batch_size = 16
    c.optim.lr = 5e-4
    c.optim.lr_warmup_steps = 20
    c.train.steps = 150
    c.train.log_every = 10
    c.train.eval_every = 0
    c.train.eval_batches = 8
    c.train.checkpoint_every = 50
    _greedy(c, limit=50, max_new_tokens=128)
    c.export.quant = "f16"


def shrink_to_tiny(c):
    """A few minutes on a 2-core CPU, every stage exercised: the tiny model, tens of steps, 3 test tasks."""
    pretrain_python.shrink_to_tiny(c)
    c.data.seq_len = 256
    c.train.steps = 60
    c.train.checkpoint_every = 30
    c.train.eval_batches = 2
    c.pretrain.data.seq_len = 128
    c.pretrain.data.global_batch_size = 8
    c.pretrain.optim.lr = 2e-3
    c.pretrain.optim.lr_warmup_steps = 10
    c.pretrain.train.steps = 40
    c.pretrain.train.eval_every = 0
    c.pretrain.train.eval_batches = 2
    c.pretrain.train.checkpoint_every = 20
    _greedy(c, limit=3, max_new_tokens=16)
    c.export.quant = "f16"
