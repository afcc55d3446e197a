"""The on-disk form of the embedded Python corpus: ArrayRecord shards of JSON records plus manifest.json.

A record is the UTF-8 JSON object {"text", "path", "package", "license", "sha256"} (all strings; sha256 of the
file's bytes). The manifest lists, per split, its shards with their record counts, and the build's statistics
and settings. `CorpusDataSource` reads one split as a grain random-access source of such dicts; a record that is
not readable or not a valid record raises `CorpusFormatError` naming the shard and the record's index in it.
"""
from __future__ import annotations

import bisect
import json
import os
import pathlib
from typing import Any, Iterable, Sequence, SupportsIndex

from array_record.python import array_record_data_source, array_record_module

MANIFEST = "manifest.json"
FORMAT_NAME = "hrm-jax python corpus"
FORMAT_VERSION = 1
RECORD_FIELDS = ("text", "path", "package", "license", "sha256")
# Group size 1 gives grain O(1) random access to every record.
WRITER_OPTIONS = "group_size:1"


class CorpusFormatError(ValueError):
    """A corpus folder, manifest, shard or record that is missing or malformed; the message says which."""


def encode_record(record: dict) -> bytes:
    """Serialises one corpus record (checks it has exactly the string fields of `RECORD_FIELDS`)."""
    check_record(record, "<record to write>")
    return json.dumps({k: record[k] for k in RECORD_FIELDS}, ensure_ascii=False).encode("utf-8")


def decode_record(data: bytes, where: str) -> dict:
    """Parses one serialised record; `where` (shard and index) goes into any error."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusFormatError(f"{where}: malformed record, not UTF-8 JSON ({e})") from None
    check_record(record, where)
    return record


def check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise CorpusFormatError(f"{where}: record must be a JSON object, got {type(record).__name__}")
    missing = [k for k in RECORD_FIELDS if k not in record]
    if missing:
        raise CorpusFormatError(f"{where}: record lacks field(s) {missing}")
    bad = [k for k in RECORD_FIELDS if not isinstance(record[k], str)]
    if bad:
        raise CorpusFormatError(f"{where}: record field(s) {bad} must be strings")


def write_shard(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Writes records to one ArrayRecord file; returns how many."""
    writer = array_record_module.ArrayRecordWriter(os.fspath(path), WRITER_OPTIONS)
    count = 0
    try:
        for record in records:
            writer.write(encode_record(record))
            count += 1
    finally:
        writer.close()
    return count


def write_manifest(corpus_dir: str | os.PathLike, manifest: dict) -> pathlib.Path:
    path = pathlib.Path(corpus_dir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(corpus_dir: str | os.PathLike) -> dict:
    """The checked manifest of a corpus folder."""
    path = pathlib.Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no corpus manifest (build one with python -m input_pipeline.build_corpus)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusFormatError(f"{path}: malformed manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CorpusFormatError(f"{path}: not a {FORMAT_NAME!r} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise CorpusFormatError(f"{path}: manifest version {manifest.get('version')!r}, expected {FORMAT_VERSION}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict):
        raise CorpusFormatError(f"{path}: manifest has no 'splits' object")
    for name, split in splits.items():
        shards = split.get("shards") if isinstance(split, dict) else None
        if not isinstance(shards, list) or not all(
                isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("records"), int)
                for s in shards):
            raise CorpusFormatError(f"{path}: split {name!r} must list shards as {{'file': str, 'records': int}}")
    return manifest


def split_shard_paths(corpus_dir: str | os.PathLike, split: str) -> tuple[list[pathlib.Path], list[int]]:
    """The shard files of `split` and their record counts, from the manifest."""
    manifest = read_manifest(corpus_dir)
    if split not in manifest["splits"]:
        raise CorpusFormatError(f"{pathlib.Path(corpus_dir) / MANIFEST}: no split {split!r}; "
                                f"it has {sorted(manifest['splits'])}")
    shards = manifest["splits"][split]["shards"]
    return [pathlib.Path(corpus_dir) / s["file"] for s in shards], [s["records"] for s in shards]


class CorpusDataSource:
    """A grain random-access source over one corpus split: `source[i]` is the i-th record as a dict.

    Shards are opened on construction (their record counts must match the manifest) and read through
    array_record's `ArrayRecordDataSource`; the source pickles without open files, for grain workers.
    """

    def __init__(self, corpus_dir: str | os.PathLike, split: str):
        self._corpus_dir = os.fspath(corpus_dir)
        self._split = split
        paths, counts = split_shard_paths(corpus_dir, split)
        self._paths = [os.fspath(p) for p in paths]
        self._sources = []
        for path, expected in zip(self._paths, counts):
            if not os.path.isfile(path):
                raise CorpusFormatError(f"{path}: shard listed in the manifest is missing")
            try:
                source = array_record_data_source.ArrayRecordDataSource([path])
            except Exception as e:  # array_record raises RuntimeError/ValueError on a damaged file
                raise CorpusFormatError(f"{path}: not a readable ArrayRecord shard ({e})") from e
            if len(source) != expected:
                raise CorpusFormatError(f"{path}: holds {len(source)} records, the manifest says {expected}")
            self._sources.append(source)
        self._starts = [0]
        for count in counts:
            self._starts.append(self._starts[-1] + count)

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return f"CorpusDataSource({self._corpus_dir!r}, {self._split!r}, {len(self)} records)"

    def locate(self, index: SupportsIndex) -> tuple[str, int]:
        """(shard path, index within the shard) of global record `index`."""
        shard, local = self._shard_and_local(index)
        return self._paths[shard], local

    def __getitem__(self, index: SupportsIndex) -> dict:
        shard, local = self._shard_and_local(index)
        where = f"{self._paths[shard]}: record {local}"
        try:
            data = self._sources[shard][local]
        except Exception as e:
            raise CorpusFormatError(f"{where}: cannot be read ({e})") from e
        return decode_record(data, where)

    def _shard_and_local(self, index: SupportsIndex) -> tuple[int, int]:
        i = index.__index__()
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} is outside {self!r}")
        shard = bisect.bisect_right(self._starts, i) - 1
        return shard, i - self._starts[shard]

    def __getitems__(self, indices: Sequence[SupportsIndex]) -> list[dict]:
        return [self[i] for i in indices]
