"""evals.edits scoring of hand-made answers, the CanItEdit loader on a fixture in its published schema, and the
edit prompt format (loss on the target only)."""
import json
import pathlib

import numpy as np
import pytest

from evals.canitedit import load_canitedit
from evals.edits import score
from input_pipeline import edit_prompts
from input_pipeline.codemods import actions
from input_pipeline.codemods.records import NormalizedRecord
from tests.fixtures_tokenizer import session_tokenizer

FIXTURE = pathlib.Path(__file__).parent / "golden" / "canitedit_sample.jsonl"
ACTION = {"language": "python", "rule": {"pattern": "g($$$A)"}, "fix": "h($$$A)"}
RECORD = NormalizedRecord("r", "m.py", "python", "Replace calls to g with h.", "x = g(1)\n", "x = h(1)\n", ACTION,
                          "test", {"kind": "replace_call", "num_edits": 1})


def test_score_actions():
    answers = [actions.action_text(ACTION), "<action>\nrule: [\n</action>",
               actions.action_text({**ACTION, "rule": {"pattern": "q($$$A)"}})]
    summary, samples = score("edit_actions", [RECORD] * 3, answers)
    assert [s["verdict"] for s in samples] == ["applied", "invalid_yaml", "no_match"]
    assert summary["apply_success"] == pytest.approx(1 / 3)
    assert summary["mean_reward"] == pytest.approx((1.0 - 0.2 + samples[2]["reward"]) / 3)


def test_score_post_code():
    summary, samples = score("edit_sft", [RECORD, RECORD], ["x = h(1)\n", "x = h(2)\n"])
    assert summary["exact_match"] == 0.5 and [s["exact"] for s in samples] == [True, False]


def test_canitedit_loader_reads_the_published_schema(tmp_path):
    tasks = load_canitedit(FIXTURE)
    assert [t.id for t in tasks] == ["canitedit/1", "canitedit/2"]
    assert tasks[0].pre.endswith("a - b\n") and tasks[0].post.endswith("a + b\n")
    assert tasks[1].instruction.startswith("Add a parameter") and tasks[1].meta["change_kind"] == "adaptive"
    assert load_canitedit(FIXTURE, "lazy")[0].instruction == "fix add"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 3, "name": "x"}) + "\n")
    with pytest.raises(ValueError, match="lacks"):
        load_canitedit(bad)


@pytest.mark.parametrize("stage, target", [("edit_sft", RECORD.post), ("edit_actions", actions.action_text(ACTION))])
def test_edit_example_masks_only_the_target(stage, target):
    tok = session_tokenizer()
    ids, mask = edit_prompts.edit_example(RECORD, tok, stage)
    prompt = edit_prompts.prompt_ids(RECORD, tok)
    assert list(ids[:len(prompt)]) == prompt and prompt[-1] == tok.special_id("<INTENT:REFACTOR>")
    assert mask[:len(prompt)].sum() == 0 and np.all(mask[len(prompt):] == 1)
    assert tok.decode(list(ids[len(prompt):-1])) == target and ids[-1] == tok.eos_id


@pytest.mark.parametrize("name", ["edit_sft", "edit_actions", "edit_srl"])
def test_edit_configs_validate(name):
    import importlib

    from hrm_jax import config as config_lib

    module = importlib.import_module(f"configs.{name}")
    for variant in ("default", "tiny"):
        c = module.get_config(variant)
        config_lib.validate(c)
        assert c.data.kind == ("edit_sft" if name == "edit_sft" else "edit_actions")
        if name == "edit_srl":
            assert c.mode == "srl" and c.data.global_batch_size == c.srl.group_size * c.srl.prompts_per_step
    with pytest.raises(ValueError, match="unknown variant"):
        module.get_config("huge")


def test_edit_batches_mask_the_target_only():
    from input_pipeline.lm_pipeline import edit_batches

    tok = session_tokenizer()
    batch = next(iter(edit_batches([RECORD] * 4, tok, "edit_actions", seq_len=128, batch_size=2, training=False)))
    ids, mask = edit_prompts.edit_example(RECORD, tok, "edit_actions")
    row = batch["inputs"][0]
    n = len(ids)
    assert list(row[:n]) == list(ids) and list(batch["loss_mask"][0][:n]) == list(mask)
    assert batch["loss_mask"].sum() == 4 * mask.sum()
