"""samples.jsonl: one JSON line per judged sample, written a whole task at a time, read back to resume.

Every line carries `task_id`, `sample` (0-based) and `of` (the task's line count); a task is complete when all
its `of` lines are there. A torn last line (an interrupted write) is cut off on open; lines of incomplete tasks
are dropped, so those tasks run again. `samples.settings.json` beside it pins the settings the samples were made with.
"""
from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Sequence


class SampleStoreError(ValueError):
    """A samples file or settings file that cannot be resumed; the message names the file (and line)."""


class SampleStore:
    def __init__(self, out_dir: str | os.PathLike, settings: dict, filename: str = "samples.jsonl"):
        self.dir = pathlib.Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / filename
        self._check_settings(settings)
        self.tasks: dict[str, list[dict]] = self._load()

    def _check_settings(self, settings: dict) -> None:
        path = self.path.with_suffix(".settings.json")
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            for key in sorted(set(saved) | set(settings)):
                if saved.get(key) != settings.get(key):
                    raise SampleStoreError(
                        f"{path}: setting {key!r} was {saved.get(key)!r}, now {settings.get(key)!r}; "
                        "use another --out or delete the folder to start over")
        else:
            path.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")

    def _load(self) -> dict[str, list[dict]]:
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # torn last line
            data = data[:data.rfind(b"\n") + 1]
        by_task: dict[str, list[dict]] = {}
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                key, sample, of = str(record["task_id"]), int(record["sample"]), int(record["of"])
            except (ValueError, KeyError, TypeError) as e:
                raise SampleStoreError(f"{self.path}:{lineno}: not a sample record ({e})") from None
            by_task.setdefault(key, []).append(record)
        complete = {k: sorted(v, key=lambda r: r["sample"]) for k, v in by_task.items()
                    if sorted(r["sample"] for r in v) == list(range(v[0]["of"]))}
        lines = [json.dumps(r) + "\n" for records in complete.values() for r in records]
        self.path.write_text("".join(lines), encoding="utf-8")  # only complete tasks remain
        return complete

    def done(self, task_id: str) -> bool:
        return task_id in self.tasks

    def append(self, task_id: str, records: Sequence[dict]) -> None:
        """Writes one task's records in a single write, each tagged with task_id, sample and of."""
        tagged = [{"task_id": task_id, "sample": i, "of": len(records), **r} for i, r in enumerate(records)]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in tagged))
            f.flush()
        self.tasks[task_id] = tagged
