"""MBPP as a TFDS data set: importing this module registers the builder "mbpp" (configs "full", "sanitized").

Works without TensorFlow: examples are written as array_record (the default here) and read with
`as_data_source()`, which returns numpy values (text as bytes).

    import input_pipeline.mbpp
    builder = tfds.builder("mbpp/full", data_dir=..., source_dir="/path/with/mbpp")  # or $HRM_JAX_DATA_DIR
    builder.download_and_prepare()
    test = builder.as_data_source()["test"]

The source file is a local copy under `source_dir` (or $HRM_JAX_DATA_DIR) when there is one, else the
canonical google-research file downloaded by TFDS; either way its sha256 must be the pinned one.
The plain loader `load_mbpp` (from `mbpp_data`, re-exported here) needs no TFDS.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from input_pipeline.mbpp_data import (DATA_DIR_ENV, SOURCES, SPLITS, MbppDataError, load_mbpp, mbpp_path,
                                      read_mbpp_file, split_of, verify_sha256)

__all__ = ["Mbpp", "MbppDataError", "SPLITS", "load_mbpp", "read_mbpp_file", "split_of"]

_CITATION = """@article{austin2021program,
  title={Program Synthesis with Large Language Models},
  author={Austin, Jacob and Odena, Augustus and Nye, Maxwell and Bosma, Maarten and Michalewski, Henryk
          and Dohan, David and Jiang, Ellen and Cai, Carrie and Terry, Michael and Le, Quoc and Sutton, Charles},
  journal={arXiv preprint arXiv:2108.07732},
  year={2021}
}"""


class Mbpp(tfds.core.GeneratorBasedBuilder):
    """Mostly Basic Python Problems, with the standard prompt/test/validation/train splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Pinned google-research files; splits by task_id 1-10/11-510/511-600/601-974."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="full", description="All 974 tasks (mbpp.jsonl)."),
        tfds.core.BuilderConfig(name="sanitized", description="The 427 hand-verified tasks (sanitized-mbpp.json)."),
    ]

    # TFDS finds a builder's code path through `importlib_resources`, which is not installed; the module
    # file is the code path.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    def __init__(self, *, source_dir: str | os.PathLike | None = None, **kwargs):
        """`source_dir`: a folder holding mbpp/<file> (default $HRM_JAX_DATA_DIR, else download)."""
        self._source_dir = source_dir
        kwargs.setdefault("file_format", "array_record")  # tfrecord would need TensorFlow
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "task_id": np.int32,
                "text": text,
                "code": text,
                "test_list": tfds.features.Sequence(text),
                "test_setup_code": text,
                "challenge_test_list": tfds.features.Sequence(text),
            }),
            homepage="https://github.com/google-research/google-research/tree/master/mbpp",
            citation=_CITATION,
            license="CC-BY-4.0",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        variant = self.builder_config.name
        path = self._local_source(variant)
        if path is None:
            path = dl_manager.download(SOURCES[variant].url)
        verify_sha256(path, SOURCES[variant].sha256)
        records = read_mbpp_file(path, variant, check_sha256=False)
        return {split: self._generate_examples([r for r in records if lo <= r["task_id"] <= hi])
                for split, (lo, hi) in SPLITS.items()}

    def _generate_examples(self, records):
        for r in records:
            yield r["task_id"], dict(r)

    def _local_source(self, variant: str):
        """The local copy to read, or None to download; a named source_dir must hold the file."""
        if self._source_dir is None and not os.environ.get(DATA_DIR_ENV):
            return None
        return mbpp_path(variant, self._source_dir)
