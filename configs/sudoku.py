"""HRM on Sudoku-Extreme-style puzzles, as the original's Sudoku-1k recipe (HRM README: epochs 20000,
eval_interval 2000, lr 1e-4, puzzle_emb_lr 1e-4, weight_decay 1.0, puzzle_emb_weight_decay 1.0, batch 768).

    python -m input_pipeline.puzzles.sudoku --out data/sudoku-1k --num-train 1000 --num-test 1000 --num-aug 1000
    python -m hrm_jax.main --config=configs/sudoku.py --workdir=runs/sudoku --config.data.path=data/sudoku-1k
    python -m hrm_jax.main --config=configs/sudoku.py:tiny --workdir=/tmp/sudoku_tiny     # 2-core CPU, minutes
    # the same-size transformer baseline instead (equal params; --config.model.transformer.size_by=flops)
    python -m hrm_jax.main --config=configs/sudoku.py:tiny --workdir=/tmp/sudoku_tf --config.model.family=transformer

The original's total steps: int(epochs * total_groups * mean_puzzle_examples / global_batch) = 26,041 for 1k
groups x 1001 puzzles. `:tiny` generates a small dataset into its workdir and trains a small model briefly.
`--config.model.family=trm` trains TRM (`model.trm`, config/arch/trm.yaml's values) on the same recipe;
configs/trm_sudoku.py is TRM's own recipe.
"""

from hrm_jax.config import base_config


def get_config(variant: str = "default"):
    c = base_config()
    c.data.kind = "puzzle"
    c.data.path = "data/sudoku-1k"
    c.data.global_batch_size = 768
    c.model.loss_type = "stablemax_cross_entropy"  # the original's (also what "" picks on puzzles)
    c.optim.lr = 1e-4
    c.optim.puzzle_emb_lr = 1e-4
    c.optim.weight_decay = 1.0
    c.optim.puzzle_emb_weight_decay = 1.0
    c.optim.lr_warmup_steps = 2000
    c.optim.lr_min_ratio = 1.0
    c.train.steps = 26_041
    c.train.log_every = 100
    c.train.eval_every = 2604
    c.train.checkpoint_every = 2604
    if variant == "tiny":
        c.data.path = ""
        c.data.generate = "sudoku"
        c.data.generate_num_train = 32
        c.data.generate_num_test = 32
        c.data.generate_num_aug = 8
        c.data.generate_min_rating = 1.0
        c.data.global_batch_size = 32
        h = c.model.hrm
        h.hidden_size = 64
        h.num_heads = 2
        h.H_layers = h.L_layers = 1
        h.puzzle_emb_ndim = 64
        h.halt_max_steps = 4
        c.model.transformer.puzzle_emb_ndim = 64  # --config.model.family=transformer: sized to this HRM
        c.model.forward_dtype = "float32"
        t = c.model.trm  # --config.model.family=trm: a TRM of the same small size
        t.hidden_size, t.num_heads, t.L_layers, t.H_cycles, t.L_cycles = 64, 2, 2, 2, 2
        t.puzzle_emb_ndim = 64
        t.halt_max_steps = 4
        c.optim.lr = 1e-3
        c.optim.puzzle_emb_lr = 1e-2
        c.optim.weight_decay = c.optim.puzzle_emb_weight_decay = 0.1
        c.optim.lr_warmup_steps = 10
        c.train.steps = 100
        c.train.log_every = 10
        c.train.eval_every = 0
        c.train.checkpoint_every = 50
    elif variant != "default":
        raise ValueError(f"configs/sudoku.py: unknown variant {variant!r} (default, tiny)")
    return c
