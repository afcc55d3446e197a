"""Where each language of the embedded code corpus comes from on this machine, with per-file package and licence.

    go          GOROOT/src (Debian's golang-go)                    licence: file header, else GOROOT/LICENSE (BSD)
    java        the JDK's lib/src.zip (openjdk-17-source)           file header (GPL-2.0 + Classpath exception ...)
    cpp         /usr/include (C and C++ headers of Debian packages) file header, else the owning package's
                                                                    Debian copyright file
    javascript  npm packages installed into <sources>/npm          the package's package.json
    rust        crate sources: /usr/share/cargo/registry (Debian     the crate's Cargo.toml
                librust-*-dev), ~/.cargo/registry/src, rustup's rust-src component
    python      this interpreter's standard library (+ site-packages with `python_site_packages`)

All are installed by scripts/install_corpus_sources.sh (<sources> = $HRM_JAX_CORPUS_SOURCES, default
~/.cache/hrm-jax/corpus_sources). A language whose sources are missing gives no files, never an error. Caps keep a
build at CPU scale: of the candidate files a deterministic sample (ordered by a hash of the path, so it does not
depend on walk order) is taken until `max_files` or `max_bytes` is reached; the result is sorted by path.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import pathlib
import shutil
import subprocess
import sysconfig
import zipfile
from typing import Iterable, Iterator

from input_pipeline import source_licenses as lic
from input_pipeline.code_languages import EXTENSIONS, check_language
from input_pipeline.corpus_sources import CorpusRoot, SourceFile, find_source_files

_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "testdata", "node_modules/.bin", ".cache"}


@dataclasses.dataclass(frozen=True)
class SourceCaps:
    """At most this many files and bytes per language (0 = no cap)."""
    max_files: int = 0
    max_bytes: int = 0


def default_sources_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("HRM_JAX_CORPUS_SOURCES")
                        or pathlib.Path.home() / ".cache" / "hrm-jax" / "corpus_sources")


def language_files(language: str, caps: SourceCaps = SourceCaps(), sources_dir: str | os.PathLike | None = None,
                   python_stdlib_subdirs: tuple[str, ...] = (), python_site_packages: bool = False
                   ) -> list[SourceFile]:
    """The (capped) source files of one language found on this machine."""
    check_language(language)
    sources = pathlib.Path(sources_dir) if sources_dir else default_sources_dir()
    if language == "python":
        candidates = _python_files(python_stdlib_subdirs, python_site_packages)
    elif language == "java":
        return _java_files(caps, sources)
    else:
        candidates = list({"go": _go_files, "cpp": _cpp_files, "javascript": _javascript_files,
                           "rust": _rust_files}[language](sources))
    chosen = apply_caps(candidates, caps)
    # Licences read from file headers are looked up after capping (a header read per file is the slow part).
    resolve = {"go": _go_license, "cpp": _cpp_license}.get(language)
    return [dataclasses.replace(f, license=resolve(f)) for f in chosen] if resolve else chosen


def apply_caps(files: list[SourceFile], caps: SourceCaps, size=lambda f: f.abs_path.stat().st_size
               ) -> list[SourceFile]:
    """The deterministic capped sample of `files` (module docstring), sorted by (package, path)."""
    if not caps.max_files and not caps.max_bytes:
        return sorted(files, key=lambda f: (f.path, f.package))
    chosen, total = [], 0
    for f in sorted(files, key=lambda f: hashlib.blake2b(f.path.encode(), digest_size=8).digest()):
        if caps.max_files and len(chosen) >= caps.max_files:
            break
        try:
            n = size(f)
        except OSError:
            n = 0
        if caps.max_bytes and total + n > caps.max_bytes:
            continue  # a smaller file may still fit
        chosen.append(f)
        total += n
    return sorted(chosen, key=lambda f: (f.path, f.package))


def walk(root: pathlib.Path, extensions: tuple[str, ...], extensionless_under: str | None = None
         ) -> Iterator[pathlib.Path]:
    """Files under `root` (links followed) ending in `extensions`, plus extension-less files in folders whose
    path contains `extensionless_under` (the C++ standard headers)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        extless = extensionless_under is not None and extensionless_under in dirpath + "/"
        for name in sorted(filenames):
            if name.endswith(extensions) or (extless and "." not in name):
                yield pathlib.Path(dirpath, name)


def _file(abs_path: pathlib.Path, rel: str, package: str, license_: str) -> SourceFile:
    return SourceFile(abs_path, rel, package, license_, 0)


def _header_license(path: pathlib.Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8192).decode("utf-8", errors="replace")
    except OSError:
        return None
    return lic.license_from_header(head)


def goroot() -> pathlib.Path | None:
    """GOROOT of the installed Go (`go env GOROOT`, else the newest /usr/lib/go-*)."""
    if shutil.which("go"):
        try:
            out = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, timeout=30).stdout.strip()
            if out and os.path.isdir(os.path.join(out, "src")):
                return pathlib.Path(out)
        except (OSError, subprocess.SubprocessError):
            pass
    found = sorted(glob.glob("/usr/lib/go-*/src"))
    return pathlib.Path(found[-1]).parent if found else None


def _go_files(sources: pathlib.Path) -> Iterable[SourceFile]:
    root = goroot()
    if root is None:
        return
    src = root / "src"
    for path in walk(src, EXTENSIONS["go"]):
        rel = path.relative_to(src).as_posix()
        yield _file(path, rel, rel.split("/", 1)[0] if "/" in rel else "go", "")


def _go_license(f: SourceFile) -> str:
    return _header_license(f.abs_path) or "BSD-3-Clause"  # GOROOT/LICENSE


def jdk_src_zip() -> pathlib.Path | None:
    """The src.zip of the JDK that `javac` belongs to, else of any JDK under /usr/lib/jvm."""
    candidates = []
    javac = shutil.which("javac")
    if javac:
        candidates.append(pathlib.Path(os.path.realpath(javac)).parent.parent / "lib" / "src.zip")
    candidates += [pathlib.Path(p) for p in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip"))]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    return None


def _java_files(caps: SourceCaps, sources: pathlib.Path) -> list[SourceFile]:
    """The capped sample of src.zip's .java members, extracted into <sources>/java/<jdk> on first use."""
    archive = jdk_src_zip()
    if archive is None:
        return []
    stat = archive.stat()
    out = sources / "java" / f"{archive.parent.parent.name}-{stat.st_size}"
    with zipfile.ZipFile(archive) as z:
        members = {i.filename: i for i in z.infolist() if i.filename.endswith(".java") and not i.is_dir()}
        candidates = [_file(out / name, name, name.split("/", 1)[0], "") for name in members]
        chosen = apply_caps(candidates, caps, size=lambda f: members[f.path].file_size)
        for f in chosen:
            if not f.abs_path.is_file():
                f.abs_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.abs_path.with_suffix(".tmp")
                tmp.write_bytes(z.read(members[f.path]))
                tmp.replace(f.abs_path)
    return [dataclasses.replace(f, license=_header_license(f.abs_path) or lic.UNKNOWN_LICENSE) for f in chosen]


def _cpp_files(sources: pathlib.Path) -> Iterable[SourceFile]:
    root = pathlib.Path("/usr/include")
    if not root.is_dir():
        return
    owners = lic.dpkg_file_owners()
    for path in walk(root, EXTENSIONS["cpp"], extensionless_under="/c++/"):
        rel = path.relative_to(root).as_posix()
        package = owners.get(str(path)) or owners.get(os.path.realpath(path))
        yield _file(path, rel, package or f"include/{rel.split('/', 1)[0]}", "")


def _cpp_license(f: SourceFile) -> str:
    """The file's header, else the Debian copyright of its package (files of no package: "unknown")."""
    license_ = _header_license(f.abs_path)
    if license_ is None and not f.package.startswith("include/"):
        license_ = lic.debian_package_license(f.package)
    return license_ or lic.UNKNOWN_LICENSE


def _javascript_files(sources: pathlib.Path) -> Iterable[SourceFile]:
    modules = sources / "npm" / "node_modules"
    if not modules.is_dir():
        return
    for path in walk(modules, EXTENSIONS["javascript"]):
        rel = path.relative_to(modules).as_posix()
        parts = rel.split("/")
        if path.name.endswith((".min.js", ".min.mjs")):
            continue
        package, package_dir = npm_package_of(modules, parts)
        yield _file(path, rel, package, lic.npm_license(str(package_dir)))


def npm_package_of(modules: pathlib.Path, parts: list[str]) -> tuple[str, pathlib.Path]:
    """(name, folder) of the innermost package holding node_modules/<parts>: the folder after the last
    node_modules on the path (two folders for a scoped @scope/name)."""
    full = ["node_modules"] + parts[:-1]
    last = max(i for i, p in enumerate(full) if p == "node_modules" and i + 1 < len(full)) if len(full) > 1 else 0
    name = full[last + 1] if last + 1 < len(full) else parts[0]
    end = last + 2
    if name.startswith("@") and last + 2 < len(full):
        name, end = f"{name}/{full[last + 2]}", last + 3
    return name, modules.parent.joinpath(*full[:end])


def _rust_roots() -> list[pathlib.Path]:
    roots = [pathlib.Path("/usr/share/cargo/registry")]
    cargo_home = pathlib.Path(os.environ.get("CARGO_HOME") or pathlib.Path.home() / ".cargo")
    roots += [pathlib.Path(p) for p in sorted(glob.glob(str(cargo_home / "registry" / "src" / "*")))]
    rustup_home = pathlib.Path(os.environ.get("RUSTUP_HOME") or pathlib.Path.home() / ".rustup")
    roots += [pathlib.Path(p) for p in sorted(glob.glob(str(rustup_home / "toolchains" / "*" / "lib" / "rustlib"
                                                            / "src" / "rust" / "library")))]
    return [r for r in roots if r.is_dir()]


def _rust_files(sources: pathlib.Path) -> Iterable[SourceFile]:
    for root in _rust_roots():
        for crate in sorted(p for p in root.iterdir() if p.is_dir()):
            license_ = lic.cargo_license(str(crate))
            if license_ == lic.UNKNOWN_LICENSE and root.name == "library":  # rust-src: the standard library
                license_ = "MIT OR Apache-2.0"
            for path in walk(crate, EXTENSIONS["rust"]):
                rel = f"{crate.name}/{path.relative_to(crate).as_posix()}"
                yield _file(path, rel, crate.name, license_)


def _python_files(stdlib_subdirs: tuple[str, ...], site_packages: bool) -> list[SourceFile]:
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    roots = ([CorpusRoot(stdlib / sub, stdlib=True) for sub in stdlib_subdirs] if stdlib_subdirs
             else [CorpusRoot(stdlib, stdlib=True)])
    if site_packages:
        roots.append(CorpusRoot(pathlib.Path(sysconfig.get_paths()["purelib"])))
    return find_source_files(roots)
