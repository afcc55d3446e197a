"""Codemod data: every rule template yields verified records; the action forms; splits by file; stats."""
import json

import pytest

from input_pipeline.codemods import actions
from input_pipeline.codemods.apply_rule import apply_action
from input_pipeline.codemods.records import (NormalizedRecord, build_records, read_split, split_of, stats,
                                             verify_record, write_dataset)
from input_pipeline.codemods.templates import TEMPLATES

# One module that offers every template something to do.
MODULE = '''"""A module."""
import json
import os
import re
from typing import Mapping, Sequence


def collect(items, limit=None, strict=False):
    count = 0
    out = []
    for x in items:
        out.append(x * 2)
    if limit == None:
        print("no limit", count)
    total = max(len(out), 3)
    for i, v in sorted(enumerate(out)):
        count = count + v
        pass
    return collect_more(total, count)


def collect_more(a, b):
    res = []
    for k in range(a):
        res.append(k + b)
    return res
'''


def test_every_template_yields_a_verified_record():
    records, rejected = build_records([("pkg/mod.py", MODULE)])
    kinds = {r.meta["kind"] for r in records}
    assert kinds == set(TEMPLATES), f"templates without a record: {set(TEMPLATES) - kinds}; rejected {rejected}"
    assert len(TEMPLATES) >= 12
    for r in records:
        assert verify_record(r) is None
        assert r.split == split_of("pkg/mod.py") and r.language == "python" and r.instruction


def test_verification_catches_a_wrong_post():
    record = build_records([("pkg/mod.py", MODULE)])[0][0]
    bad = NormalizedRecord(**{**record.__dict__, "post": record.post + "\nx = 1\n"})
    assert verify_record(bad) == "applying the action does not give post"


def test_fix_templates_and_nested_matches():
    src = 's = "é"\nx = g(1, g(2, 3))\n'
    out, n = apply_action(src, {"language": "python", "rule": {"pattern": "g($$$A)"}, "fix": "h($$$A)"})
    assert (out, n) == ('s = "é"\nx = h(1, g(2, 3))\n', 1)  # the nested call is inside the outer match


def test_action_forms_round_trip():
    action = actions.normalise({"rule": {"pattern": "print($$$A)"}, "fix": "log($$$A)"})
    assert actions.parse_action(actions.action_text(action)) == (action, "yaml")
    assert actions.parse_action(actions.cli(action)) == (action, "cli")
    assert actions.cli({**action, "rule": {"kind": "identifier"}}) == ""


@pytest.mark.parametrize("text, reason", [
    ("<action>\nrule: [unclosed\n</action>", "invalid_yaml"),
    ("<action>\n- a list\n</action>", "invalid_yaml"),
    ("<action>\nrule: {pattern: x}\nfixx: y\n</action>", "unknown_field"),
    ("<action>\nrule: {patern: x}\n</action>", "unknown_field"),
    ("ast-grep run --pattern x --frobnicate y", "unknown_field"),
    ("<action>\nfix: y\n</action>", "invalid_action"),
    ("<action>\nrule: {pattern: x}\n", "invalid_action"),
])
def test_bad_actions_name_their_reason(text, reason):
    with pytest.raises(actions.ActionError) as e:
        actions.parse_action(text)
    assert e.value.reason == reason


def test_splits_by_file_and_dataset_files(tmp_path):
    files = [(f"pkg/m{i}.py", MODULE) for i in range(12)]
    records, _ = build_records(files)
    meta = write_dataset(records, tmp_path)
    by_file = {}
    for split in ("train", "validation", "test"):
        for r in read_split(tmp_path, split):
            assert by_file.setdefault(r.source, split) == split
    assert len(by_file) == 12 and meta["stats"] == stats(records)
    assert sum(meta["stats"]["per_split"].values()) == len(records)
    assert json.loads((tmp_path / "metadata.json").read_text())["stats"]["records"] == len(records)
