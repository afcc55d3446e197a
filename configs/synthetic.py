"""A generated sorting task (no files): the smoke test of the whole training system.

    python -m hrm_jax.main --config=configs/synthetic.py:tiny --workdir=/tmp/hrm_synthetic
"""

from hrm_jax.config import base_config


def get_config(variant: str = "tiny"):
    c = base_config()
    c.data.kind = "synthetic"
    c.model.hrm.puzzle_emb_ndim = c.model.transformer.puzzle_emb_ndim = 32
    c.data.synthetic_num_identifiers = 4
    c.model.loss_type = "softmax_cross_entropy"
    c.optim.lr_warmup_steps = 20
    if variant == "tiny":
        c.model.hrm.hidden_size = 32
        c.model.hrm.num_heads = 2
        c.model.hrm.H_layers = c.model.hrm.L_layers = 1
        c.model.hrm.halt_max_steps = 4
        c.model.forward_dtype = "float32"
        c.data.global_batch_size = 16
        c.optim.lr = 3e-3
        c.train.steps = 100
        c.train.log_every = 10
        c.train.checkpoint_every = 50
    elif variant != "default":
        raise ValueError(f"configs/synthetic.py: unknown variant {variant!r} (tiny, default)")
    return c
