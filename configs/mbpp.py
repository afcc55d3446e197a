"""Fine-tune the code model on MBPP (train split, loss on the code only) and evaluate on MBPP validation.

    python -m hrm_jax.main --config=configs/mbpp.py --workdir=runs/mbpp --config.init_from=runs/pretrain_python
    python -m hrm_jax.main --config=configs/mbpp.py:tiny --workdir=/tmp/mbpp_tiny                  # 2-core CPU, minutes

`init_from` takes the parameters of a pretraining run (configs/pretrain_python.py; use the same workdir's
tokenizer: --config.data.tokenizer=runs/pretrain_python/tokenizer/code.model). Without it the model starts from
scratch. The MBPP file is read from $HRM_JAX_DATA_DIR/mbpp/mbpp.jsonl (or --config.data.data_dir), checksum-verified.
Pass@k on the test split (sandboxed execution) is `python -m evals.mbpp` once generation evaluation lands.
"""

from configs import pretrain_python


def get_config(variant: str = "default"):
    c = pretrain_python.get_config("default")
    c.data.kind = "mbpp"
    c.data.seq_len = 512
    c.data.global_batch_size = 32
    c.optim.lr = 1e-4
    c.optim.lr_warmup_steps = 100
    c.train.steps = 2000
    c.train.eval_every = 500
    c.train.eval_batches = 0
    c.train.checkpoint_every = 500
    if variant == "tiny":
        pretrain_python.shrink_to_tiny(c)
        c.data.seq_len = 256
        c.train.steps = 60
        c.train.checkpoint_every = 30
        c.train.eval_batches = 2
    elif variant != "default":
        raise ValueError(f"configs/mbpp.py: unknown variant {variant!r} (default, tiny)")
    return c
