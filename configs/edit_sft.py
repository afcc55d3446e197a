"""Stage 0 of the code-edit recipe: instruction + pre-code -> post-code, on the verified codemod data.

    python -m hrm_jax.main --config=configs/edit_sft.py --workdir=runs/edit_sft
    python -m hrm_jax.main --config=configs/edit_sft.py:tiny --workdir=/tmp/edit_sft_tiny   # 2-core CPU, minutes

The codemod dataset (`input_pipeline.build_codemods`) is built into <workdir>/codemods unless `data.edits_path`
names one; the prompt format is `input_pipeline.edit_prompts` (loss on the target only). The model is the code
model of configs/pretrain_python.py; `--config.init_from=<a pretrain workdir>` starts from its parameters.
Evaluate with `python -m evals.edits --workdir=... --config=configs/edit_sft.py:tiny`.
"""
from configs import pretrain_python

KIND = "edit_sft"


def get_config(variant: str = "default", kind: str = KIND):
    if variant not in ("default", "tiny"):
        raise ValueError(f"configs/{kind}: unknown variant {variant!r} (default, tiny)")
    c = pretrain_python.get_config(variant)  # model settings: the code model's, left to that config
    c.data.kind = kind
    c.data.seq_len = 1024
    c.data.global_batch_size = 32
    c.optim.lr = 1e-4
    c.optim.lr_warmup_steps = 100
    c.train.steps = 3000
    c.train.eval_every = 500
    c.train.eval_batches = 20
    c.train.checkpoint_every = 500
    if variant == "tiny":
        c.data.edits_stdlib_subdirs = ("json", "email", "logging", "importlib", "urllib", "asyncio", "concurrent",
                                       "xml", "http", "collections", "unittest")
        c.data.seq_len = 256
        c.data.global_batch_size = 8
        c.optim.lr = 2e-3
        c.optim.lr_warmup_steps = 20
        c.train.steps = 200
        c.train.eval_every = 0
        c.train.eval_batches = 4
        c.train.checkpoint_every = 100
    return c
