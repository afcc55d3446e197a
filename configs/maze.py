"""HRM on 30x30 mazes with shortest paths > 110 (the original's Maze-Hard-1k recipe: epochs 20000,
eval_interval 2000, lr 1e-4, puzzle_emb_lr 1e-4, weight_decay 1.0, batch 768, no augmentation).

    python -m input_pipeline.puzzles.maze --out data/maze-30x30-hard-1k --num-train 1000 --num-test 1000
    python -m hrm_jax.main --config=configs/maze.py --workdir=runs/maze --config.data.path=data/maze-30x30-hard-1k
    python -m hrm_jax.main --config=configs/maze.py:tiny --workdir=/tmp/maze_tiny         # 2-core CPU, minutes
    python -m hrm_jax.main --config=configs/maze.py:tiny --workdir=/tmp/trm_maze_tiny --config.model.family=trm
"""

from configs import sudoku


def get_config(variant: str = "default"):
    c = sudoku.get_config("tiny" if variant == "tiny" else "default")
    if variant not in ("default", "tiny"):
        raise ValueError(f"configs/maze.py: unknown variant {variant!r} (default, tiny)")
    c.data.path = "data/maze-30x30-hard-1k"
    c.train.steps = 26_041  # 1000 groups x 1 puzzle x 20000 epochs / 768
    if variant != "tiny":
        c.model.trm.L_cycles = 4  # --config.model.family=trm: the TRM README's Maze-Hard setting (n = 4)
    else:
        c.data.path = ""
        c.data.generate = "maze"
        c.data.generate_maze_size = 12
        c.data.generate_min_path_length = 20
        c.data.generate_num_train = c.data.generate_num_test = 32
        c.train.steps = 60
    return c
