"""Verified codemod records from Python source files: units, proposals, verification, splits, files, stats.

    units (top-level functions, leading import blocks) -> each template's proposal -> apply with ast-grep
    -> verify -> NormalizedRecord

A record is kept only when it verifies (`verify_record`): its action, read back from its canonical text,
rewrites `pre` into exactly `post` with at least one match; `pre` and `post` both parse and differ. Splits are by
source file (a hash of its path: 80% train, 10% validation, 10% test), so no file is in two splits.
On disk (`write_dataset`): <out>/<split>.jsonl (one record a line), metadata.json, stats.txt.
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import hashlib
import json
import os
import pathlib
import random
from typing import Iterable, Sequence

from input_pipeline.codemods import actions as actions_lib
from input_pipeline.codemods.apply_rule import RuleError, apply_action
from input_pipeline.codemods.templates import TEMPLATES, Unit

SPLITS = ("train", "validation", "test")
FORMAT_NAME, FORMAT_VERSION = "hrm_jax.codemods", 1
METADATA = "metadata.json"


@dataclasses.dataclass(frozen=True)
class NormalizedRecord:
    """One verified edit. `action` is the normalised ast-grep action (`actions.normalise`); `meta` holds the
    template kind, the number of rewritten matches and the unit kind."""
    id: str
    source: str
    language: str
    instruction: str
    pre: str
    post: str
    action: dict
    split: str
    meta: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> "NormalizedRecord":
        data = json.loads(line)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and f.name != "meta"]
        if missing:
            raise ValueError(f"codemod record lacks field(s) {missing}")
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass(frozen=True)
class UnitSettings:
    min_chars: int = 80
    max_chars: int = 1200
    max_records_per_file_kind: int = 2


def split_of(source: str) -> str:
    """The split of a source file: the first 64 bits of sha256(path) as a fraction of 2**64."""
    x = int(hashlib.sha256(source.encode()).hexdigest()[:16], 16) / 2.0**64
    return "train" if x < 0.8 else "validation" if x < 0.9 else "test"


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except (SyntaxError, ValueError):
        return False


def extract_units(text: str, settings: UnitSettings = UnitSettings()) -> list[Unit]:
    """Top-level functions and the leading run of import statements of a module, within the size bounds."""
    try:
        module = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines(keepends=True)
    units = []
    imports = []
    for node in module.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif imports or not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            if imports:
                break
    if len(imports) >= 2:
        block = "".join(lines[imports[0].lineno - 1:imports[-1].end_lineno])
        if _parses(block):
            units.append(Unit("imports", block, ast.parse(block)))
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.decorator_list:
            body = "".join(lines[node.lineno - 1:node.end_lineno])
            if settings.min_chars <= len(body) <= settings.max_chars and _parses(body):
                units.append(Unit("function", body, ast.parse(body)))
    return units


def verify_record(record: NormalizedRecord) -> str | None:
    """None when the record verifies, else the reason it does not."""
    try:
        action, _ = actions_lib.parse_action(actions_lib.action_text(record.action))
        result, n = apply_action(record.pre, action)
    except (actions_lib.ActionError, RuleError) as e:
        return f"the action does not apply: {e}"
    if n == 0:
        return "the rule matches nothing"
    if result != record.post:
        return "applying the action does not give post"
    if record.pre == record.post:
        return "the edit changes nothing"
    if not _parses(record.pre) or not _parses(record.post):
        return "pre or post does not parse"
    return None


def records_for_file(source: str, text: str, settings: UnitSettings = UnitSettings(),
                     kinds: Sequence[str] | None = None) -> tuple[list[NormalizedRecord], collections.Counter]:
    """Verified records of one file, and the count of rejected proposals by reason."""
    split = split_of(source)
    out, rejected, per_kind = [], collections.Counter(), collections.Counter()
    for u_index, unit in enumerate(extract_units(text, settings)):
        for kind in kinds or TEMPLATES:
            if per_kind[kind] >= settings.max_records_per_file_kind:
                continue
            rng = random.Random(f"{source}:{u_index}:{kind}")
            proposal = TEMPLATES[kind](unit, rng)
            if proposal is None:
                continue
            try:
                action = actions_lib.normalise(proposal.action)
                post, n = apply_action(unit.text, action)
            except (actions_lib.ActionError, RuleError):
                rejected["rule error"] += 1
                continue
            rid = hashlib.sha256(f"{source}\0{u_index}\0{kind}".encode()).hexdigest()[:16]
            record = NormalizedRecord(rid, source, "python", proposal.instruction, unit.text, post, action, split,
                                      {"kind": proposal.kind, "num_edits": n, "unit": unit.kind})
            reason = verify_record(record)
            if reason:
                rejected[reason] += 1
                continue
            out.append(record)
            per_kind[kind] += 1
    return out, rejected


def build_records(files: Iterable[tuple[str, str]], settings: UnitSettings = UnitSettings(),
                  kinds: Sequence[str] | None = None) -> tuple[list[NormalizedRecord], collections.Counter]:
    """Records of (source name, text) pairs, in order; and the rejected proposals by reason."""
    records, rejected = [], collections.Counter()
    for source, text in files:
        got, why = records_for_file(source, text, settings, kinds)
        records.extend(got)
        rejected.update(why)
    return records, rejected


def stats(records: Sequence[NormalizedRecord]) -> dict:
    """Counts per split, kind and language; sizes (characters of pre/post/action)."""
    def sizes(values):
        values = sorted(values)
        return {"mean": sum(values) / len(values), "max": values[-1], "median": values[len(values) // 2]} \
            if values else {}
    return {
        "records": len(records),
        "files": len({r.source for r in records}),
        "per_split": dict(collections.Counter(r.split for r in records)),
        "files_per_split": {s: len({r.source for r in records if r.split == s}) for s in SPLITS},
        "per_kind": dict(sorted(collections.Counter(r.meta.get("kind", "") for r in records).items())),
        "per_language": dict(collections.Counter(r.language for r in records)),
        "pre_chars": sizes([len(r.pre) for r in records]),
        "post_chars": sizes([len(r.post) for r in records]),
        "action_chars": sizes([len(actions_lib.rule_yaml(r.action)) for r in records]),
    }


def format_stats(s: dict) -> str:
    lines = [f"{s['records']} records from {s['files']} files"]
    for key in ("per_split", "files_per_split", "per_kind", "per_language", "pre_chars", "post_chars",
                "action_chars"):
        lines.append(f"{key}: " + ", ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in s[key].items()))
    return "\n".join(lines)


def write_dataset(records: Sequence[NormalizedRecord], out_dir: str | os.PathLike, extra: dict | None = None) -> dict:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in records:
                if r.split == split:
                    f.write(r.to_json() + "\n")
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "templates": sorted(TEMPLATES),
            "splits": {"rule": "sha256(source path): <0.8 train, <0.9 validation, else test"},
            "stats": stats(records), **(extra or {})}
    (out / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (out / "stats.txt").write_text(format_stats(meta["stats"]) + "\n")
    return meta


def read_split(data_dir: str | os.PathLike, split: str) -> list[NormalizedRecord]:
    path = pathlib.Path(data_dir, f"{split}.jsonl")
    if not path.exists():
        raise FileNotFoundError(f"no codemod split {split!r} at {path}; build it with "
                                "`python -m input_pipeline.build_codemods --out DIR`")
    with open(path, encoding="utf-8") as f:
        return [NormalizedRecord.from_json(line) for line in f if line.strip()]
