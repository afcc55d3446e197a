"""TRM on Sudoku-Extreme-1k, the original README's commands (TinyRecursiveModels @ e7b6871): arch=trm, epochs 50000,
eval_interval 5000, lr 1e-4, puzzle_emb_lr 1e-4, weight_decay 1.0, puzzle_emb_weight_decay 1.0, L_layers 2,
H_cycles 3 (T), L_cycles 6 (n), ema=True (ema_rate 0.999), global batch 768, warmup 2000, constant LR after it;
the default variant is its `pretrain_mlp_t_sudoku` run (mlp_t, pos_encodings none: TRM-MLP, 5,028,866 params),
`:att` its `pretrain_att_sudoku` run (RoPE attention: TRM-Att, 6,828,034 params).

    python -m input_pipeline.puzzles.sudoku --out data/sudoku-1k --num-train 1000 --num-test 1000 --num-aug 1000
    python -m hrm_jax.main --config=configs/trm_sudoku.py --workdir=runs/trm_sudoku --config.data.path=data/sudoku-1k
    python -m hrm_jax.main --config=configs/trm_sudoku.py:att --workdir=runs/trm_sudoku_att \
        --config.data.path=data/sudoku-1k
    python -m hrm_jax.main --config=configs/trm_sudoku.py:tiny --workdir=/tmp/trm_sudoku_tiny   # 2-core CPU, minutes

Total steps as the original counts them: epochs x groups x mean examples per group / global batch = 50000 x 1000 /
768 = 65,104; evaluation and checkpoints every 5000 epochs (6,510 steps). Evaluation and export use the EMA weights.
`:tiny` (mlp_t) and `:att_tiny` generate a small dataset into the workdir and train a small TRM briefly.
"""

from configs import sudoku


def get_config(variant: str = "default"):
    if variant not in ("default", "att", "tiny", "att_tiny"):
        raise ValueError(f"configs/trm_sudoku.py: unknown variant {variant!r} (default, att, tiny, att_tiny)")
    tiny = variant.endswith("tiny")
    c = sudoku.get_config("tiny" if tiny else "default")
    c.model.family = "trm"
    t = c.model.trm
    t.L_layers, t.H_cycles, t.L_cycles = 2, 3, 6
    t.mlp_t = not variant.startswith("att")
    t.pos_encodings = "none" if t.mlp_t else "rope"
    c.optim.ema_decay = 0.999
    c.optim.lr = c.optim.puzzle_emb_lr = 1e-4
    c.optim.weight_decay = c.optim.puzzle_emb_weight_decay = 1.0
    c.optim.lr_warmup_steps = 2000
    c.optim.lr_min_ratio = 1.0
    c.data.global_batch_size = 768
    c.train.steps = 65_104
    c.train.eval_every = c.train.checkpoint_every = 6_510
    if tiny:  # sudoku.py:tiny's data and schedule; a small TRM
        c.data.global_batch_size = 32
        t.hidden_size, t.num_heads, t.L_layers, t.H_cycles, t.L_cycles = 64, 2, 2, 2, 2
        t.puzzle_emb_ndim = 64
        t.halt_max_steps = 4
        c.optim.ema_decay = 0.99
        c.optim.lr, c.optim.puzzle_emb_lr = 1e-3, 1e-2
        c.optim.weight_decay = c.optim.puzzle_emb_weight_decay = 0.1
        c.optim.lr_warmup_steps = 10
        c.train.steps = 100
        c.train.eval_every = 0
        c.train.checkpoint_every = 50
    return c
