"""The embedded six-language code corpus: licences and the licence filter, decontamination against the Aider
Polyglot exercises, the per-language build and statistics, the six-language tokenizer's round trip, the
language-weighted mixture, and `configs/pretrain_code.py:tiny` through the entry point."""
import collections
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fixtures_tokenizer import REPO_ROOT, data_dir, session_tokenizer
from input_pipeline import build_code_corpus as cli
from input_pipeline import code_corpus, lm_pipeline
from input_pipeline.code_languages import LANGUAGE_TAGS, LANGUAGES, language_tag, parse_languages
from input_pipeline.code_sources import SourceCaps, apply_caps, npm_package_of
from input_pipeline.corpus_sources import SourceFile
from input_pipeline.decontamination import POLYGLOT_DIR, load_code_benchmark_index, polyglot_exercise_dirs
from input_pipeline.python_corpus import CorpusSettings, build_corpus, iter_removed
from input_pipeline.source_licenses import (DEFAULT_ALLOWED_LICENSES, cargo_license, is_allowed_license,
                                            license_from_header, normalise_expression, npm_license)
from input_pipeline.tokenizer import TokenizerMismatchError

POLYGLOT = data_dir() / POLYGLOT_DIR
GO_EXERCISE = POLYGLOT / "go" / "exercises" / "practice" / "bottle-song"


@pytest.fixture(scope="module")
def code_index():
    return load_code_benchmark_index()


@pytest.fixture(scope="module")
def tiny_code_corpus(tmp_path_factory):
    """The CLI's build of a small corpus from this machine's sources (languages whose sources are missing are
    empty), with its tokenizer, and the CLI's printed output."""
    out = tmp_path_factory.mktemp("code") / "corpus"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        manifest = cli.main(["--out", str(out), "--max_files_per_language", "12", "--max_mb_per_language", "0.3",
                             "--python_stdlib_subdirs", "json", "--vocab_size", "700", "--validation_fraction", "0.25",
                             "--tokenizer_files_per_language", "12", "--no-polyglot_round_trip",
                             "--workers", "1"], stream=io.StringIO())
    return out, manifest, printed.getvalue()


# --- licences ---

@pytest.mark.parametrize("header, expected", [
    ("// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note\n", "GPL-2.0-only WITH Linux-syscall-note"),
    ("/* SPDX-License-Identifier: MIT */\nint x;\n", "MIT"),
    ("// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n",
     "BSD-3-Clause"),
    (" * under the terms of the GNU General Public License version 2 only, as\n * published by the Free Software "
     "Foundation.  Oracle designates this\n * particular file as subject to the \"Classpath\" exception\n",
     "GPL-2.0-only WITH Classpath-exception-2.0"),
    (" * under the terms of the GNU General Public License version 2 only, as published\n", "GPL-2.0-only"),
    ("package main\n\nfunc main() {}\n", None),
])
def test_license_from_header(header, expected):
    assert license_from_header(header) == expected


def test_allow_list_takes_any_or_alternative_and_refuses_plain_gpl_and_unknown():
    allowed = DEFAULT_ALLOWED_LICENSES
    assert is_allowed_license("MIT OR Apache-2.0", allowed)
    assert is_allowed_license("GPL-3.0-only OR MIT", allowed)
    assert is_allowed_license("MIT/Apache-2.0", allowed)  # Cargo's old form
    assert is_allowed_license("(MIT AND Zlib)", allowed)
    assert not is_allowed_license("MIT AND GPL-2.0-only", allowed)
    assert not is_allowed_license("GPL-2.0-only", allowed)
    assert not is_allowed_license("unknown", allowed)
    assert normalise_expression("GPL-2.0+ with Linux-syscall-note") == "GPL-2.0-or-later WITH Linux-syscall-note"


def test_cargo_and_npm_licences_come_from_their_manifests(tmp_path):
    (tmp_path / "crate").mkdir()
    (tmp_path / "crate" / "Cargo.toml").write_text('[package]\nname = "c"\nlicense = "MIT/Apache-2.0"\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "package.json").write_text(json.dumps({"name": "p", "license": {"type": "ISC"}}))
    (tmp_path / "bare").mkdir()
    assert cargo_license(str(tmp_path / "crate")) == "MIT OR Apache-2.0"
    assert npm_license(str(tmp_path / "pkg")) == "ISC"
    assert cargo_license(str(tmp_path / "bare")) == npm_license(str(tmp_path / "bare")) == "unknown"


def test_npm_package_is_the_innermost_one_on_the_path(tmp_path):
    modules = tmp_path / "node_modules"
    assert npm_package_of(modules, ["lodash", "fp", "map.js"]) == ("lodash", modules / "lodash")
    assert npm_package_of(modules, ["@babel", "core", "lib", "x.js"]) == ("@babel/core", modules / "@babel" / "core")
    assert npm_package_of(modules, ["a", "node_modules", "b", "i.js"]) == ("b", modules / "a" / "node_modules" / "b")


def test_caps_take_a_walk_order_independent_sample_within_both_limits(tmp_path):
    files = []
    for i in range(50):
        p = tmp_path / f"f{i}.go"
        p.write_text("x" * (100 + i))
        files.append(SourceFile(p, p.name, "pkg", "MIT", 0))
    chosen = apply_caps(files, SourceCaps(max_files=10, max_bytes=900))
    assert len(chosen) <= 10 and sum(f.abs_path.stat().st_size for f in chosen) <= 900
    assert [f.path for f in chosen] == [f.path for f in apply_caps(files[::-1], SourceCaps(10, 900))]
    assert [f.path for f in chosen] == sorted(f.path for f in chosen)
    assert len(apply_caps(files, SourceCaps())) == 50


# --- filtering: licence, minified, exercism, decontamination ---

def _source(tmp_path, name, text, license_="MIT"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return SourceFile(path, name, name.split("/", 1)[0], license_, 0)


CLEAN_GO = ("package ring\n\n// Ring is a fixed-size circular buffer of ints.\ntype Ring struct {\n\tbuf  []int\n"
            "\thead int\n}\n\nfunc (r *Ring) Push(v int) {\n\tr.buf[r.head%len(r.buf)] = v\n\tr.head++\n}\n")


def test_code_rules_remove_unlicensed_minified_exercism_and_a_planted_exercise(tmp_path, code_index):
    example = (GO_EXERCISE / ".meta" / "example.go").read_text(encoding="utf-8")
    files = [
        _source(tmp_path, "ring/ring.go", CLEAN_GO),
        _source(tmp_path, "songs/bottles.go", "// vendored helper\n" + example),  # planted exercise solution
        _source(tmp_path, "gpl/ring.go", CLEAN_GO.replace("Ring", "GRing"), "GPL-2.0-only"),
        _source(tmp_path, "nolicense/ring.go", CLEAN_GO.replace("Ring", "URing"), "unknown"),
        _source(tmp_path, "min/all.go", "package min\nvar x = []int{" + "1, " * 600 + "}\n"),
        _source(tmp_path, "exercism-go/leap.go", CLEAN_GO.replace("ring", "leap")),
        _source(tmp_path, "notes/leap.go", "// From the Exercism go track.\n" + CLEAN_GO.replace("ring", "lp")),
    ]
    settings = CorpusSettings(allowed_licenses=DEFAULT_ALLOWED_LICENSES, max_line_chars=1000,
                              validation_fraction=0.0)
    manifest = build_corpus([], tmp_path / "out", benchmark_index=code_index, settings=settings, files=files,
                            extra_manifest={"language": "go"})
    removed = {e["path"]: (e["rule"], e["detail"]) for e in iter_removed(tmp_path / "out")}
    rule, detail = removed.pop("songs/bottles.go")
    assert rule == "contaminated" and "polyglot/go/bottle-song" in detail.split(", ")
    assert removed == {
        "gpl/ring.go": ("unlicensed", "GPL-2.0-only"),
        "nolicense/ring.go": ("unlicensed", "unknown"),
        "min/all.go": ("minified", "a line over 1000 characters"),
        "exercism-go/leap.go": ("benchmark_package", "exercism-go"),
        "notes/leap.go": ("benchmark_package", "mentions Exercism"),
    }
    assert manifest["stats"]["files_kept"] == 1 and manifest["language"] == "go"


def test_code_index_holds_every_polyglot_exercise_and_each_language_plant_is_caught(code_index):
    exercises = polyglot_exercise_dirs(POLYGLOT)
    assert len(exercises) == 225
    polyglot_tasks = {t for t in code_index.tasks if t.startswith("polyglot/")}
    assert polyglot_tasks == {task for task, _ in exercises}
    for language in LANGUAGES:  # one exercise per language, from its stub or tests (not only the solution)
        task, folder = next((t, d) for t, d in exercises if t.startswith(f"polyglot/{language}/"))
        tests = [p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".json", ".toml", ".hpp", ".md")
                 and ("test" in p.relative_to(folder).as_posix().lower() or ".spec." in p.name)]
        test_file = max(tests, key=lambda p: p.stat().st_size)
        assert task in code_index.matching_tasks(test_file.read_text(encoding="utf-8")), test_file


def test_licence_text_alone_is_not_contamination(code_index):
    mit = (POLYGLOT / "javascript" / "exercises" / "practice" / "forth" / "LICENSE").read_text(encoding="utf-8")
    assert code_index.matching_tasks("/*\n" + mit + "*/\nexport const f = () => 1;\n") == []


# --- the build, the statistics, the tokenizer ---

def test_build_writes_a_corpus_per_language_and_the_stats_table(tiny_code_corpus):
    out, manifest, printed = tiny_code_corpus
    assert list(manifest["languages"]) == list(LANGUAGES)
    built = code_corpus.built_languages(out)
    assert "python" in built  # always has sources; the others where their toolchains are installed
    for language in built:
        entry = manifest["languages"][language]
        assert 0 < entry["files_kept"] <= entry["files_found"] <= 12
        assert entry["tokens_kept"] > 0
        records = code_corpus.language_source(out, language, "train")
        assert all(records[i]["text"] for i in range(len(records)))
    table = (out / code_corpus.STATS_FILE).read_text()
    assert table.strip() == code_corpus.format_stats_table(manifest)
    assert "| python" in printed and "round trip:" in printed and ", 0 failures" in printed
    assert json.loads((out / code_corpus.CODE_MANIFEST).read_text())["tokenizer"]["vocab_size"] == 700


def test_build_refuses_to_overwrite_without_the_flag(tiny_code_corpus, code_index):
    out, _, _ = tiny_code_corpus
    with pytest.raises(FileExistsError, match="already holds a code corpus"):
        code_corpus.build_code_corpus(out, benchmark_index=code_index,
                                      settings=code_corpus.CodeCorpusSettings(languages=("python",)))


def test_tokenizer_has_the_language_tags_and_round_trips_the_sampled_corpus_files(tiny_code_corpus):
    out, _, _ = tiny_code_corpus
    tok = code_corpus.SentencePieceTokenizer.load(out / "tokenizer.model")
    for tag in LANGUAGE_TAGS:
        assert tok.encode(tag) == [tok.special_id(tag)]
        assert tok.decode([tok.special_id(tag)]) == tag
    sampled = [(r["path"], r["text"]) for _, r in code_corpus.sample_documents(out, 0)]
    checked, failures = code_corpus.round_trip_failures(tok, sampled)
    assert checked == len(sampled) > 0 and failures == []


def test_tokenizer_round_trips_a_sample_of_the_polyglot_files(tiny_code_corpus):
    out, _, _ = tiny_code_corpus
    tok = code_corpus.SentencePieceTokenizer.load(out / "tokenizer.model")
    sample = list(code_corpus.polyglot_files(POLYGLOT))[::10]  # every language and kind of file
    checked, failures = code_corpus.round_trip_failures(tok, sample)
    assert checked > 200 and failures == []
    assert {name.split("/", 1)[0] for name, _ in sample} >= set(LANGUAGES)


@pytest.mark.slow
def test_tokenizer_round_trips_every_polyglot_file(tiny_code_corpus):
    out, _, _ = tiny_code_corpus
    tok = code_corpus.SentencePieceTokenizer.load(out / "tokenizer.model")
    checked, failures = code_corpus.round_trip_failures(tok, code_corpus.polyglot_files(POLYGLOT))
    assert checked > 2000 and failures == []


# --- the mixture ---

def test_mixture_honours_the_language_weights_on_a_seeded_sample():
    sources = {lang: [{"text": f"{lang} {i}", "path": str(i)} for i in range(n)]
               for lang, n in (("go", 7), ("rust", 50), ("python", 3), ("cpp", 5))}
    weights = {"go": 3.0, "rust": 1.0, "python": 2.0, "cpp": 0.0}
    ds = lm_pipeline.language_mixture(sources, weights, seed=4)
    n = 600
    counts = collections.Counter(ds[i]["language"] for i in range(n))
    assert set(counts) == {"go", "rust", "python"}
    for lang in ("go", "rust", "python"):  # a deterministic interleaving: within one record of the share
        assert abs(counts[lang] - n * weights[lang] / 6.0) <= 1, counts
    assert [ds[i] for i in range(20)] == [lm_pipeline.language_mixture(sources, weights, seed=4)[i]
                                          for i in range(20)]
    assert [ds[i] for i in range(20)] != [lm_pipeline.language_mixture(sources, weights, seed=5)[i]
                                          for i in range(20)]


def test_mixture_refuses_bad_weights():
    sources = {"go": [{"text": "x"}]}
    with pytest.raises(ValueError, match="lacks"):
        lm_pipeline.language_mixture(sources, {"go": 1.0, "rust": 1.0})
    with pytest.raises(ValueError, match="every language weight is 0"):
        lm_pipeline.language_mixture(sources, {"go": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        lm_pipeline.language_mixture(sources, {"go": -1.0})


def test_mixture_batches_tag_documents_in_the_weighted_proportion(tiny_code_corpus):
    out, _, _ = tiny_code_corpus
    tok = code_corpus.SentencePieceTokenizer.load(out / "tokenizer.model")
    built = code_corpus.built_languages(out)
    weights = {lang: float(k + 1) for k, lang in enumerate(built)}
    # concat_then_split keeps the mixture's document order, so the first N documents are counted exactly
    ds = lm_pipeline.code_mixture_batches(out, tok, weights, seq_len=1024, batch_size=4, seed=0,
                                          packing="concat_then_split")
    tag_ids = {tok.special_id(language_tag(lang)): lang for lang in built}
    counts = collections.Counter()
    for _, batch in zip(range(60), ds):
        assert batch["inputs"].shape == (4, 1024)
        counts.update(tag_ids[i] for i in batch["inputs"].reshape(-1).tolist() if i in tag_ids)
    total = sum(counts.values())
    assert total >= 50
    for lang in built:  # within one document of the share, plus the one cut off at the end
        assert abs(counts[lang] - total * weights[lang] / sum(weights.values())) <= 2, counts
    with pytest.raises(ValueError, match="has no 'cobol' files"):
        lm_pipeline.code_mixture_batches(out, tok, {"cobol": 1.0}, seq_len=64, batch_size=2)


def test_mixture_refuses_another_tokenizer(tiny_code_corpus):
    out, _, _ = tiny_code_corpus
    with pytest.raises(TokenizerMismatchError):
        lm_pipeline.code_mixture_batches(out, session_tokenizer(), {"python": 1.0}, seq_len=64, batch_size=2)


def test_parse_languages():
    assert parse_languages("go, rust,go") == ("go", "rust")
    with pytest.raises(ValueError, match="unknown language 'cobol'"):
        parse_languages("cobol")


# --- the entry point ---

@pytest.mark.slow  # ~60 s on 2 busy cores, most of it compiling
def test_pretrain_code_tiny_trains_from_the_entry_point(tiny_code_corpus, tmp_path):
    out, _, _ = tiny_code_corpus
    workdir = tmp_path / "run"
    overrides = {"data.path": out, "data.tokenizer": out / "tokenizer.model", "data.data_dir": data_dir(),
                 "train.steps": 3, "train.log_every": 1, "train.checkpoint_every": 0,
                 "data.language_weights.cpp": 0.0}  # weights reach the pipeline: a 0 leaves a language out
    cmd = [sys.executable, "-m", "hrm_jax.main", "--config=configs/pretrain_code.py:tiny", f"--workdir={workdir}",
           *(f"--config.{k}={v}" for k, v in overrides.items())]
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses = [m["train/loss"] for m in metrics if "train/loss" in m]
    assert len(losses) == 3 and all(np.isfinite(losses))
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["data"]["kind"] == "code_corpus" and saved["data"]["language_weights"]["cpp"] == 0.0
