"""A loader for CanItEdit (Cassano et al., 2024; nuprl/CanItEdit) in its published JSONL schema.

One task a line: `id`, `name`, `full_name`, `before` (the code), `after` (the reference edit), `tests` (Python
asserting on the edited code), `instruction_descriptive`, `instruction_lazy`, `taxonomy` (`change_kind`,
`libraries`, `topic`). The benchmark is not reachable from this project's machines (no network but package
registries): `python -m evals.edits --canitedit=FILE` reads a local copy. Tasks become `NormalizedRecord`s
(split "test", no action) so the edit evaluation reads them as it reads held-out codemods.
"""
from __future__ import annotations

import json
import os

from input_pipeline.codemods.records import NormalizedRecord

REQUIRED = ("id", "name", "before", "after", "tests", "instruction_descriptive", "instruction_lazy")
INSTRUCTIONS = ("descriptive", "lazy")


def load_canitedit(path: str | os.PathLike, instruction: str = "descriptive") -> list[NormalizedRecord]:
    """The tasks of a CanItEdit JSONL file; `instruction` picks the descriptive or the lazy instruction."""
    if instruction not in INSTRUCTIONS:
        raise ValueError(f"instruction must be one of {INSTRUCTIONS}, got {instruction!r}")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                task = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
            missing = [k for k in REQUIRED if k not in task]
            if missing:
                raise ValueError(f"{path}:{n}: a CanItEdit task lacks {missing}")
            taxonomy = task.get("taxonomy") or {}
            out.append(NormalizedRecord(
                id=f"canitedit/{task['id']}", source=f"canitedit/{task.get('full_name') or task['name']}",
                language="python", instruction=task[f"instruction_{instruction}"], pre=task["before"],
                post=task["after"], action={}, split="test",
                meta={"tests": task["tests"], "change_kind": taxonomy.get("change_kind", ""),
                      "topic": taxonomy.get("topic", ""), "libraries": taxonomy.get("libraries", [])}))
    return out
