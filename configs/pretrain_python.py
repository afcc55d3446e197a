"""Pretrain the code model on the embedded Python corpus (this interpreter's stdlib and site-packages).

    python -m hrm_jax.main --config=configs/pretrain_python.py --workdir=runs/pretrain_python
    python -m hrm_jax.main --config=configs/pretrain_python.py:tiny --workdir=/tmp/pretrain_tiny   # 2-core CPU, minutes

The model is HRM-Text (`model.family=hrm_text`, `model.hrm_text.preset` code-30m, prefix-LM off so every runtime
computes what was trained); `--config.model.family=hrm` trains the causal HRM instead (`model.hrm`, prepared
here), `--config.model.family=trm` a causal TRM (`model.trm`), `--config.model.family=transformer` the
llama-shaped transformer baseline sized to HRM-Text. The tokenizer (<workdir>/tokenizer/code.model) and the corpus
(<workdir>/python_corpus) are built on the first run unless `data.tokenizer` / `data.path` point at existing ones.
"""

from hrm_jax.config import base_config


def get_config(variant: str = "default"):
    c = base_config()
    c.data.kind = "python_corpus"
    c.model.family = "hrm_text"
    c.model.hrm_text.preset = "code-30m"
    c.model.forward_dtype = "bfloat16"
    # --config.model.family=hrm: the causal HRM (its loss: softmax CE, what model.loss_type "" picks on code).
    c.model.hrm.puzzle_emb_ndim = 0
    c.model.hrm.causal = True
    # --config.model.family=trm: TRM as a causal LM (hidden 512, 8 heads, 2 layers, T = n = 2, 2 segments).
    c.model.trm.causal = True
    c.model.trm.puzzle_emb_ndim = 0
    c.model.trm.H_cycles = c.model.trm.L_cycles = 2
    c.model.trm.halt_max_steps = 2
    c.model.hrm_text.remat = True  # per-block rematerialization: code-30m at 32 x 512 needs ~10 GiB instead of ~23
    c.data.seq_len = 1024
    c.data.global_batch_size = 64
    c.optim.lr = 3e-4
    c.optim.lr_min_ratio = 0.1
    c.optim.lr_warmup_steps = 1000
    c.optim.weight_decay = 0.1
    c.optim.grad_clip_norm = 1.0
    c.train.steps = 20_000
    c.train.log_every = 50
    c.train.eval_every = 2000
    c.train.eval_batches = 20
    c.train.checkpoint_every = 1000
    if variant == "tiny":
        shrink_to_tiny(c)
    elif variant != "default":
        raise ValueError(f"configs/pretrain_python.py: unknown variant {variant!r} (default, tiny)")
    return c


def shrink_to_tiny(c):
    """A few minutes on a 2-core CPU: a small tokenizer and corpus, a 2-layer model, short rows."""
    c.model.forward_dtype = "float32"
    c.model.hrm_text.remat = False  # nothing to save at this size; remat would only add compile time
    c.model.hrm_text.hidden_size = 64
    c.model.hrm_text.intermediate_size = 192
    c.model.hrm_text.num_layers_per_stack = 1
    c.model.hrm_text.num_attention_heads = 2
    c.model.hrm_text.head_dim = 32
    # causal HRM alternative, same size
    c.model.hrm.hidden_size = 64
    c.model.hrm.num_heads = 2
    c.model.hrm.H_layers = c.model.hrm.L_layers = 1
    c.model.hrm.halt_max_steps = 2
    c.model.trm.hidden_size, c.model.trm.num_heads, c.model.trm.L_layers = 64, 2, 1  # causal TRM alternative
    c.data.tokenizer_vocab_size = 1024
    c.data.tokenizer_sample_files = 60
    c.data.corpus_stdlib_subdirs = ("json", "email", "logging", "importlib", "urllib")
    c.data.corpus_validation_fraction = 0.1
    c.data.seq_len = 128
    c.data.global_batch_size = 8
    c.optim.lr = 2e-3
    c.optim.lr_warmup_steps = 20
    c.train.steps = 150
    c.train.log_every = 10
    c.train.eval_every = 0
    c.train.eval_batches = 4
    c.train.checkpoint_every = 50
