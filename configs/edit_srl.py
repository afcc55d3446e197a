"""The SRL stage of the code-edit recipe: reward-driven updates of a Stage 1 (edit_actions) policy.

    python -m hrm_jax.main --config=configs/edit_srl.py --workdir=runs/edit_srl --config.init_from=runs/edit_actions
    python -m hrm_jax.main --config=configs/edit_srl.py:tiny --workdir=/tmp/edit_srl_tiny \
        --config.init_from=/tmp/edit_actions_tiny

Per step: `srl.prompts_per_step` teacher states (codemod records of the Stage 1 run's train split), G =
`srl.group_size` sampled actions each, the SRL reward (evals/edit_reward.py), a group-relative advantage and one
GRPO update (clipped ratio `srl.clip_eps`, KL to the starting policy `srl.kl_coef`); hrm_jax/srl.py. The model,
tokenizer and codemod data are the Stage 1 run's (`init_from`); the model fields here must match it, so this
config is derived from configs/edit_actions.py with the same variant.
"""
import ml_collections

from configs import edit_actions


def get_config(variant: str = "default"):
    c = edit_actions.get_config(variant)
    c.mode = "srl"
    c.srl = ml_collections.ConfigDict()
    c.srl.group_size = 8
    c.srl.prompts_per_step = 8
    c.srl.max_new_tokens = 192
    c.srl.temperature = 1.0
    c.srl.top_k = 0
    c.srl.clip_eps = 0.2
    c.srl.kl_coef = 0.05
    c.optim.lr = 1e-5
    c.optim.lr_warmup_steps = 10
    c.optim.weight_decay = 0.0
    c.train.steps = 500
    c.train.log_every = 10
    c.train.checkpoint_every = 50
    if variant == "tiny":
        c.srl.group_size = 4
        c.srl.prompts_per_step = 2
        c.srl.max_new_tokens = 96
        c.optim.lr = 2e-4
        c.optim.lr_warmup_steps = 2
        c.train.steps = 30
        c.train.log_every = 5
        c.train.checkpoint_every = 10
    c.data.global_batch_size = c.srl.group_size * c.srl.prompts_per_step
    return c
