"""`python -m evals.edits`: a code-edit run on held-out codemods (or CanItEdit tasks), greedy, through the sandbox.

    python -m evals.edits --workdir=/tmp/edit_sft_tiny --config=configs/edit_sft.py:tiny [--limit=N]
    python -m evals.edits --workdir=/tmp/edit_actions_tiny --config=configs/edit_actions.py:tiny
    python -m evals.edits --workdir=/tmp/edit_srl_tiny --config=configs/edit_srl.py:tiny
    python -m evals.edits --workdir=RUN --config=... --canitedit=canitedit.jsonl   # a local copy (not reachable here)

The stage is the run's data kind: edit_sft (Stage 0) emits post-code, scored by exact match; edit_actions (Stage 1,
and SRL runs) emits an action, executed in the sandbox (evals/edit_executor.py): apply-success (the action gives
exactly the post-code, which is then the exact match), its verdicts, and the SRL reward against the teacher's
action. Held-out = the codemod split (`--split`, default test) of the run's dataset, records whose example fits the
run's `data.seq_len`. Writes <out>/summary.json and samples.jsonl (default <workdir>/eval/edits_<split>).
"""
from __future__ import annotations

import collections
import json
import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's config file (configs/edit_*.py[:variant]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run directory holding the checkpoint.")
_SPLIT = flags.DEFINE_string("split", "test", "Codemod split (train, validation, test).")
_LIMIT = flags.DEFINE_integer("limit", 0, "Evaluate only the first N records (0 = all).")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 0, "Tokens generated per record (0 = the longest target + 8).")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Rows per generate call.")
_CANITEDIT = flags.DEFINE_string("canitedit", "", "A CanItEdit JSONL file to evaluate instead (Stage 0 runs).")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
flags.mark_flags_as_required(["config", "workdir"])


def generate_answers(model, tokenizer, prompts, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy completions of prompt id lists, decoded up to </s>."""
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from hrm_jax import generate as gen_lib  # noqa: PLC0415

    sampling = gen_lib.SamplingConfig(max_new_tokens=max_new_tokens, stop_tokens=(tokenizer.eos_id,),
                                      pad_token_id=tokenizer.pad_id)
    width = max(len(p) for p in prompts)
    texts = []
    for b in range(0, len(prompts), batch_size):
        rows = prompts[b:b + batch_size]
        ids = np.full((batch_size, width), tokenizer.pad_id, np.int32)
        mask = np.zeros_like(ids)
        ids[:, -1], mask[:, -1] = tokenizer.eos_id, 1  # filler rows
        for i, p in enumerate(rows):
            ids[i, width - len(p):], mask[i, width - len(p):] = p, 1
        out = gen_lib.generate(model, ids, sampling, attention_mask_BS=mask, rng=jax.random.key(b))
        tokens, lengths = np.asarray(out.tokens_BN), np.asarray(out.num_tokens_B)
        for i in range(len(rows)):
            row = tokens[i, :lengths[i]].tolist()
            texts.append(tokenizer.decode([t for t in row if t != tokenizer.eos_id]))
    return texts


def score(stage: str, records, answers) -> tuple[dict, list[dict]]:
    """(summary, per-record samples) of answers to records for a stage (edit_sft / edit_actions)."""
    from evals.edit_executor import execute_many  # noqa: PLC0415
    from evals.edit_reward import srl_reward  # noqa: PLC0415

    samples = [{"id": r.id, "kind": r.meta.get("kind", ""), "answer": a} for r, a in zip(records, answers)]
    n = len(records)
    if stage == "edit_sft":
        exact = [a == r.post for r, a in zip(records, answers)]
        for s, e in zip(samples, exact):
            s["exact"] = e
        return {"stage": stage, "records": n, "exact_match": sum(exact) / max(n, 1)}, samples
    runs = execute_many([(a, r.pre, r.post, r.meta.get("num_edits")) for r, a in zip(records, answers)])
    rewards = [srl_reward(r.action, a) for r, a in zip(records, answers)]
    for s, e, rw in zip(samples, runs, rewards):
        s.update(verdict=e.verdict, reward=rw, message=e.message[:200])
    applied = sum(e.applied for e in runs)
    return {"stage": stage, "records": n, "apply_success": applied / max(n, 1), "exact_match": applied / max(n, 1),
            "mean_reward": sum(rewards) / max(n, 1),
            "verdicts": dict(collections.Counter(e.verdict for e in runs))}, samples


def run() -> dict:
    from hrm_jax import runtime  # noqa: PLC0415

    runtime.start(_WORKDIR.value, capture_stdout=False)
    from evals.canitedit import load_canitedit  # noqa: PLC0415
    from hrm_jax import restore  # noqa: PLC0415
    from input_pipeline import edit_prompts  # noqa: PLC0415
    from input_pipeline.codemods.records import read_split  # noqa: PLC0415

    start = time.time()
    restored = restore.load_for_inference(restore.inference_source(_WORKDIR.value, _CONFIG.value), _CONFIG.value)
    config, tokenizer = restored.config, restored.tokenizer
    stage = config.data.kind
    if stage not in edit_prompts.STAGES:
        raise ValueError(f"{_WORKDIR.value} is a {stage!r} run, not a code-edit one (edit_sft, edit_actions)")
    if _CANITEDIT.value:
        if stage != "edit_sft":
            raise ValueError("--canitedit has no teacher actions: evaluate a Stage 0 (edit_sft) run")
        records, name = load_canitedit(_CANITEDIT.value), "canitedit"
    else:
        edits = config.data.edits_path or os.path.join(_WORKDIR.value, "codemods")
        records, name = read_split(edits, _SPLIT.value), f"edits_{_SPLIT.value}"
    held_out = len(records)
    records = edit_prompts.fitting(records, tokenizer, stage, config.data.seq_len)
    if _LIMIT.value:
        records = records[:_LIMIT.value]
    if not records:
        raise ValueError(f"no record of {held_out} fits data.seq_len={config.data.seq_len}")
    targets = [len(tokenizer.encode(edit_prompts.target_text(r, stage))) for r in records]
    max_new = _MAX_NEW.value or max(targets) + 8
    answers = generate_answers(restored.model, tokenizer, [edit_prompts.prompt_ids(r, tokenizer) for r in records],
                               max_new, _BATCH.value)
    summary, samples = score(stage, records, answers)
    summary.update(benchmark=name, held_out_records=held_out, step=restored.step, max_new_tokens=max_new,
                   seconds=round(time.time() - start, 1))
    out = _OUT.value or os.path.join(_WORKDIR.value, "eval", name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(out, "samples.jsonl"), "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(json.dumps(summary, sort_keys=True))
    return summary


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from hrm_jax import runtime  # noqa: PLC0415

    runtime.run_or_fail(run)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
