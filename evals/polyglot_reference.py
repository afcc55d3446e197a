"""Harness check: every exercise's reference solution passes its own tests through the sandbox.

    python -m evals.polyglot_reference [--languages=go,rust] [--limit=N] [--workers=1] [--out=FILE.json]

Prints one line per exercise and a table per language (passed / total, wall seconds); with --out, writes the
verdicts and the table as JSON. A language without its toolchain is skipped with its one-line reason.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time

from evals import polyglot_toolchains as tc
from evals.polyglot_exercises import Exercise, load_exercises
from evals.polyglot_sandbox import run_many_tests
from evals.verdict import Verdict


# Reference solutions that cannot pass with the toolchains Debian bookworm provides (the public harness runs them
# with Gradle/Maven and a newer Go); measured by `python -m evals.polyglot_reference`, asserted by the slow test.
KNOWN_FAILURES = {
    "go/dnd-character": "the reference imports `slices` (Go >= 1.21); Debian bookworm's golang-go is 1.19",
    "java/hangman": "needs RxJava 2 (io.reactivex), which Debian does not package",
    "java/mazy-mice": "the test uses AssertJ's ObjectArrayAssert.hasDimensions (3.17+); Debian's AssertJ is 3.14",
    "rust/poker": "the reference uses the `counter` crate, which Debian does not package",
    "rust/robot-name": "the reference is written against rand 0.3 (`Rng::choose`); Debian's rand is 0.8",
    "java/rest-api": "the reference expects json.org's unchecked JSONException; Debian's org.json (Android's) "
                     "throws a checked one",
}


def reference_files(exercise: Exercise) -> dict:
    return {**exercise.files, **exercise.reference}


def check_references(exercises: list[Exercise], workers: int = 1, stream=None) -> dict:
    """{"results": [per exercise], "languages": {language: {passed, total, seconds}}, "skipped": {...}}."""
    skipped = {}
    results, table = [], {}
    by_language = collections.defaultdict(list)
    for exercise in exercises:
        by_language[exercise.language].append(exercise)
    for language, items in by_language.items():
        reason = tc.available(language)
        if reason:
            skipped[language] = reason
            print(f"skipping {reason}", file=stream or sys.stderr)
            continue
        started = time.monotonic()
        verdicts: list[Verdict] = run_many_tests(
            [(e.language, e.name, reference_files(e), e.tests) for e in items], max_workers=workers)
        for exercise, verdict in zip(items, verdicts):
            results.append({"exercise": exercise.exercise_id, "status": verdict.status.value,
                            "error_type": verdict.error_type, "seconds": round(verdict.duration_s, 2),
                            "message": "" if verdict.passed else verdict.message[-1500:]})
            if stream is not None:
                print(f"{exercise.exercise_id}: {verdict.status.value} {verdict.error_type or ''} "
                      f"{verdict.duration_s:.1f}s", file=stream, flush=True)
        table[language] = {"passed": sum(v.passed for v in verdicts), "total": len(items),
                           "seconds": round(time.monotonic() - started, 1)}
    return {"results": results, "languages": table, "skipped": skipped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default=",".join(tc.LANGUAGES))
    parser.add_argument("--limit", type=int, default=0, help="exercises per language (0: all)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    languages = [lang for lang in args.languages.split(",") if lang]
    exercises = load_exercises(languages)
    if args.limit:
        counts = collections.Counter()
        exercises = [e for e in exercises if (counts.update([e.language]) or counts[e.language]) <= args.limit]
    report = check_references(exercises, args.workers, stream=sys.stdout)
    for language, row in report["languages"].items():
        print(f"{language:10s} {row['passed']:3d}/{row['total']:3d}  {row['seconds']:7.1f}s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0 if all(r["passed"] == r["total"] for r in report["languages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
