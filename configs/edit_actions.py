"""Stage 1 of the code-edit recipe: instruction + pre-code -> `<action>` (the ast-grep rule, YAML) `</action>`.

    python -m hrm_jax.main --config=configs/edit_actions.py --workdir=runs/edit_actions
    python -m hrm_jax.main --config=configs/edit_actions.py:tiny --workdir=/tmp/edit_actions_tiny

Everything as configs/edit_sft.py but the target (`input_pipeline.edit_prompts`, stage "edit_actions"). Its
checkpoint is where configs/edit_srl.py starts.
"""
from configs import edit_sft


def get_config(variant: str = "default"):
    return edit_sft.get_config(variant, kind="edit_actions")
