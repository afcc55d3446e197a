"""MBPP: pinned files, standard splits, checked records, the TFDS builder and the check programs."""
import json
import pathlib
import shutil
import sys

import pytest

from input_pipeline import mbpp_data
from input_pipeline.mbpp_data import (SPLITS, MbppDataError, load_mbpp, mbpp_check_program, read_mbpp_file,
                                      split_of)
from tests.fixtures_execution import failing_programs
from tests.fixtures_tokenizer import data_dir, mbpp_jsonl_records

FIELDS = {"task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list"}
SPLIT_SIZES = {"full": {"prompt": 10, "test": 500, "validation": 90, "train": 374},
               "sanitized": {"prompt": 7, "test": 257, "validation": 43, "train": 120}}


@pytest.mark.parametrize("variant", ["full", "sanitized"])
def test_standard_splits(variant):
    seen = set()
    for split, (lo, hi) in SPLITS.items():
        records = load_mbpp(split, variant)
        assert len(records) == SPLIT_SIZES[variant][split]
        ids = [r["task_id"] for r in records]
        assert ids == sorted(ids) and lo <= ids[0] and ids[-1] <= hi
        assert all(split_of(i) == split for i in ids)
        seen.update(ids)
        for r in records:
            assert set(r) == FIELDS
            assert isinstance(r["text"], str) and isinstance(r["code"], str) and r["test_list"]
    assert len(seen) == sum(SPLIT_SIZES[variant].values())


def test_full_records_are_the_file_lines():
    raw = {r["task_id"]: r for r in mbpp_jsonl_records()}
    for r in load_mbpp("test"):
        assert r == {k: raw[r["task_id"]][k] for k in FIELDS}
    assert sum(bool(r["challenge_test_list"]) for r in raw.values()) == 11


def test_sanitized_maps_prompt_and_test_imports():
    raw = {e["task_id"]: e for e in json.loads((data_dir() / "mbpp" / "sanitized-mbpp.json").read_text())}
    records = read_mbpp_file(data_dir() / "mbpp" / "sanitized-mbpp.json", "sanitized")
    assert len(records) == 427
    for r in records:
        e = raw[r["task_id"]]
        assert r["text"] == e["prompt"] and r["code"] == e["code"] and r["test_list"] == e["test_list"]
        assert r["test_setup_code"] == "\n".join(e["test_imports"]) and r["challenge_test_list"] == []
    assert any(r["test_setup_code"] == "import math" for r in records)


def test_explicit_data_dir_and_env(monkeypatch, tmp_path):
    shared = data_dir()
    monkeypatch.delenv("HRM_JAX_DATA_DIR")
    assert load_mbpp("prompt", data_dir=shared)[0]["task_id"] == 1
    with pytest.raises(MbppDataError, match="HRM_JAX_DATA_DIR"):
        load_mbpp("prompt")
    with pytest.raises(MbppDataError, match=r"MBPP file not found: .*/mbpp/mbpp.jsonl"):
        load_mbpp("prompt", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'"):
        load_mbpp("dev", data_dir=shared)
    with pytest.raises(ValueError, match="unknown MBPP variant 'tiny'"):
        load_mbpp("test", "tiny", data_dir=shared)


def _write_full(tmp_path, lines) -> pathlib.Path:
    (tmp_path / "mbpp").mkdir(exist_ok=True)
    path = tmp_path / "mbpp" / "mbpp.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _line(task_id, overrides=None):
    record = {"task_id": task_id, "text": "t", "code": "c", "test_list": ["assert True"],
              "test_setup_code": "", "challenge_test_list": []}
    record.update(overrides or {})
    return json.dumps(record)


def test_wrong_checksum_names_file_expected_and_actual(tmp_path):
    shutil.copytree(data_dir() / "mbpp", tmp_path / "mbpp")
    path = tmp_path / "mbpp" / "mbpp.jsonl"
    path.chmod(0o644)
    path.write_text(path.read_text(encoding="utf-8").replace("Write a function", "Write a func", 1))
    expected = mbpp_data.SOURCES["full"].sha256
    with pytest.raises(MbppDataError, match=rf"{path}: sha256 mismatch: expected {expected}, actual [0-9a-f]{{64}}"):
        load_mbpp("test", data_dir=tmp_path)
    assert len(load_mbpp("test", data_dir=tmp_path, check_sha256=False)) == 500


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = _write_full(tmp_path, [_line(1), _line(2), '{"task_id": 3, "text": '])
    with pytest.raises(MbppDataError, match=rf"{path}:3: malformed JSON"):
        read_mbpp_file(path, check_sha256=False)


def test_missing_field_names_file_line_and_field(tmp_path):
    bad = json.loads(_line(2))
    del bad["test_list"]
    path = _write_full(tmp_path, [_line(1), "", json.dumps(bad)])
    with pytest.raises(MbppDataError, match=rf"{path}:3: task is missing field 'test_list'"):
        read_mbpp_file(path, check_sha256=False)


@pytest.mark.parametrize("override,message", [
    ({"task_id": "7"}, "field 'task_id' must be int, got str"),
    ({"task_id": True}, "field 'task_id' must be int, got bool"),
    ({"test_list": "assert x"}, "field 'test_list' must be list, got str"),
    ({"challenge_test_list": [1]}, "field 'challenge_test_list' must be a list of strings"),
    ({"task_id": 975}, "task_id 975 is in no MBPP split"),
])
def test_bad_field_values(tmp_path, override, message):
    path = _write_full(tmp_path, [_line(1), _line(2, override)])
    with pytest.raises(MbppDataError, match=rf"{path}:2: {message}"):
        read_mbpp_file(path, check_sha256=False)


def test_not_an_object_and_duplicate_ids(tmp_path):
    path = _write_full(tmp_path, [_line(1), "[1, 2]"])
    with pytest.raises(MbppDataError, match=rf"{path}:2: expected a JSON object, got list"):
        read_mbpp_file(path, check_sha256=False)
    path = _write_full(tmp_path, [_line(1), _line(2), _line(1)])
    with pytest.raises(MbppDataError, match=rf"{path}:3: duplicate task_id 1 \(first at {path}:1\)"):
        read_mbpp_file(path, check_sha256=False)


def test_empty_file_and_empty_split(tmp_path):
    path = _write_full(tmp_path, ["", "  "])
    with pytest.raises(MbppDataError, match=rf"{path}: holds no MBPP tasks"):
        read_mbpp_file(path, check_sha256=False)
    _write_full(tmp_path, [_line(1), _line(2)])
    assert len(load_mbpp("prompt", data_dir=tmp_path, check_sha256=False)) == 2
    with pytest.raises(MbppDataError, match=r"split 'test' \(task_ids 11-510\) is empty"):
        load_mbpp("test", data_dir=tmp_path, check_sha256=False)


def test_sanitized_errors_name_file_line_and_entry(tmp_path):
    entry = {"task_id": 2, "prompt": "p", "code": "c", "test_imports": [], "test_list": ["assert 1"]}
    path = tmp_path / "sanitized-mbpp.json"
    broken = dict(entry, task_id=3)
    del broken["prompt"]
    path.write_text(json.dumps([entry]) + "\n" + "\n")
    assert read_mbpp_file(path, "sanitized", check_sha256=False)[0]["text"] == "p"
    path.write_text("[\n" + json.dumps(entry) + ",\n" + json.dumps(broken) + "\n]\n")
    with pytest.raises(MbppDataError, match=rf"{path}:3 \(entry #1\): task is missing field 'prompt'"):
        read_mbpp_file(path, "sanitized", check_sha256=False)
    path.write_text("[\n" + json.dumps(entry) + ",\n{\"task_id\": }\n]")
    with pytest.raises(MbppDataError, match=rf"{path}:3: malformed JSON"):
        read_mbpp_file(path, "sanitized", check_sha256=False)
    path.write_text("[" + json.dumps(entry) + " " + json.dumps(entry) + "]")
    with pytest.raises(MbppDataError, match=rf"{path}:1: malformed JSON \(expected ',' or ']'"):
        read_mbpp_file(path, "sanitized", check_sha256=False)
    path.write_text('{"task_id": 2}')
    with pytest.raises(MbppDataError, match="expected a JSON list of tasks"):
        read_mbpp_file(path, "sanitized", check_sha256=False)
    path.write_text("[]")
    with pytest.raises(MbppDataError, match="holds no MBPP tasks"):
        read_mbpp_file(path, "sanitized", check_sha256=False)


@pytest.mark.parametrize("variant", ["full", "sanitized"])
def test_every_reference_solution_passes_its_check_program(variant):
    records = [r for split in SPLITS for r in load_mbpp(split, variant)]
    programs = {f"task{r['task_id']}": mbpp_check_program(r, r["code"], challenge=True) for r in records}
    assert failing_programs(programs) == {}


def test_check_program_fails_a_wrong_completion():
    record = load_mbpp("prompt")[1]  # task 2
    wrong = "def similar_elements(a, b):\n    return ()\n"
    failures = failing_programs({"wrong": mbpp_check_program(record, wrong),
                                 "right": mbpp_check_program(record, record["code"])})
    assert list(failures) == ["wrong"] and "AssertionError" in failures["wrong"]


def test_check_program_runs_setup_after_the_code():
    record = {"test_list": ["assert tree.value == 1"], "test_setup_code": "tree = Node(1)",
              "challenge_test_list": ["assert False"]}
    program = mbpp_check_program(record, "class Node:\n    def __init__(self, v):\n        self.value = v")
    assert program.index("class Node") < program.index("tree = Node(1)") < program.index("assert tree")
    assert "assert False" not in program
    assert "assert False" in mbpp_check_program(record, "", challenge=True)


def test_tfds_builder_without_tensorflow(tmp_path):
    import tensorflow_datasets as tfds
    import input_pipeline.mbpp  # noqa: F401  (registers "mbpp")
    assert "mbpp" in tfds.list_builders(with_community_datasets=False)
    for variant in ("full", "sanitized"):
        builder = tfds.builder(f"mbpp/{variant}", data_dir=tmp_path / "tfds", source_dir=data_dir())
        builder.download_and_prepare()
        sources = builder.as_data_source()
        assert {split: len(sources[split]) for split in SPLITS} == SPLIT_SIZES[variant]
        expected = {r["task_id"]: r for r in load_mbpp("validation", variant)}
        for example in sources["validation"]:
            r = expected[int(example["task_id"])]
            assert example["text"].decode() == r["text"] and example["code"].decode() == r["code"]
            assert [t.decode() for t in example["test_list"]] == r["test_list"]
            assert example["test_setup_code"].decode() == r["test_setup_code"]
            assert [t.decode() for t in example["challenge_test_list"]] == r["challenge_test_list"]
    assert "tensorflow" not in sys.modules
    assert tfds.builder("mbpp", data_dir=tmp_path / "tfds").builder_config.name == "full"


def test_tfds_builder_reads_env_and_checks_the_checksum(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds
    import input_pipeline.mbpp  # noqa: F401
    shutil.copytree(data_dir() / "mbpp", tmp_path / "src" / "mbpp")
    path = tmp_path / "src" / "mbpp" / "sanitized-mbpp.json"
    path.chmod(0o644)
    path.write_text(path.read_text(encoding="utf-8") + " ")
    monkeypatch.setenv("HRM_JAX_DATA_DIR", str(tmp_path / "src"))
    builder = tfds.builder("mbpp/sanitized", data_dir=tmp_path / "tfds")
    with pytest.raises(MbppDataError, match=rf"{path}: sha256 mismatch"):
        builder.download_and_prepare()


def test_tfds_builder_downloads_when_no_local_copy(tmp_path, monkeypatch):
    """No $HRM_JAX_DATA_DIR and no source_dir: the builder asks TFDS's download manager for the canonical URL
    (mocked here: it returns a copy of the pinned file), verifies the sha256 and builds the splits."""
    import tensorflow_datasets as tfds
    import input_pipeline.mbpp as mbpp_builder
    source = data_dir() / "mbpp" / "mbpp.jsonl"
    monkeypatch.delenv("HRM_JAX_DATA_DIR", raising=False)
    fetched = []

    def fake_download(self, url):
        fetched.append(url)
        dst = tmp_path / "downloads" / "mbpp.jsonl"
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, dst)
        return dst

    monkeypatch.setattr(tfds.download.DownloadManager, "download", fake_download)
    builder = tfds.builder("mbpp/full", data_dir=tmp_path / "tfds")
    builder.download_and_prepare()
    assert fetched == [mbpp_builder.SOURCES["full"].url] and fetched[0].startswith("https://")
    assert {split: len(s) for split, s in builder.as_data_source().items()} == SPLIT_SIZES["full"]
