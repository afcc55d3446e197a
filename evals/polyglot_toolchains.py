"""Where each benchmark language's toolchain lives on this machine, and what a sandbox must expose to run it.

scripts/install_toolchains.sh installs what the machine lacks (Go, the JUnit 5 / AssertJ jars, jest, the Rust
crates three exercises use). `toolchain(language)` resolves the binaries to real paths (so the sandbox binds
directories, not /etc/alternatives chains) or raises ToolchainMissing with a one-line reason, which the
evaluator prints and then skips that language.
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import os
import shutil
import subprocess
import sys

LANGUAGES = ("cpp", "go", "java", "javascript", "python", "rust")
TOOLCHAINS_DIR = os.environ.get("HRM_JAX_TOOLCHAINS", "/opt/hrm-jax-toolchains")
JAVA_JARS = ("junit-platform-console-standalone", "junit-jupiter-api", "junit-jupiter-engine",
             "junit-jupiter-params", "junit-platform-commons", "junit-platform-engine", "junit-platform-launcher",
             "opentest4j", "apiguardian-api", "assertj-core", "com.android.json")
PYTHON_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py", "exceptiongroup", "tomli")
DEBIAN_CARGO_REGISTRY = "/usr/share/cargo/registry"
_INSTALL = "run scripts/install_toolchains.sh"


class ToolchainMissing(RuntimeError):
    """A language cannot run here; the message is one line naming what is missing and how to get it."""


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """`tools`: name -> absolute path of each binary (or jar, or dir) a language's commands use; `dirs`: what the
    sandbox binds read-only; `env`: variables its commands need beyond the sandbox's scrubbed ones."""

    language: str
    tools: dict
    dirs: tuple[str, ...]
    env: dict = dataclasses.field(default_factory=dict)
    packages: tuple[str, ...] = ()


def _which(name: str, language: str, hint: str = _INSTALL) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainMissing(f"{language}: `{name}` not found on PATH ({hint})")
    return os.path.realpath(path)


def _dirs(*paths: str) -> tuple[str, ...]:
    """The existing paths, deduplicated, in order (the sandbox binds each read-only)."""
    seen = []
    for path in paths:
        if path and os.path.exists(path) and path not in seen:
            seen.append(path)
    return tuple(seen)


_BASE_DIRS = ("/usr/bin", "/bin", "/etc/alternatives")


def _python() -> Toolchain:
    import importlib.util  # noqa: PLC0415

    missing = [p for p in PYTHON_PACKAGES[:5] if importlib.util.find_spec(p) is None]
    if missing:
        raise ToolchainMissing(f"python: packages {missing} not installed (pip install pytest)")
    packages = tuple(p for p in PYTHON_PACKAGES if importlib.util.find_spec(p) is not None)
    site = os.path.dirname(os.path.dirname(importlib.util.find_spec("pytest").origin))
    return Toolchain("python", {"python": os.path.realpath(sys.executable)}, (),
                     {"PYTHONPATH": site, "PYTHONDONTWRITEBYTECODE": "1"}, packages)


def _go() -> Toolchain:
    go = _which("go", "go", "apt-get install golang-go, or " + _INSTALL)
    goroot = os.path.dirname(os.path.dirname(go))
    return Toolchain("go", {"go": go, "gofmt": os.path.join(goroot, "bin", "gofmt")},
                     _dirs(*_BASE_DIRS, goroot, os.path.realpath(os.path.join(goroot, "src")),
                           *glob.glob("/usr/share/go-*")),
                     {"GOROOT": goroot, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local",
                      "CGO_ENABLED": "0", "GO111MODULE": "on", "GOTELEMETRY": "off"})


def _java() -> Toolchain:
    javac, java = _which("javac", "java"), _which("java", "java")
    jars = []
    for name in JAVA_JARS:
        path = f"/usr/share/java/{name}.jar"
        if not os.path.exists(path):
            raise ToolchainMissing(f"java: {path} missing (apt-get install junit5 libassertj-core-java "
                                   f"libandroid-json-java, or {_INSTALL})")
        jars.append(os.path.realpath(path))
    home = os.path.dirname(os.path.dirname(javac))
    return Toolchain("java", {"javac": javac, "java": java, "classpath": ":".join(jars[1:]),
                              "launcher": jars[0]},
                     _dirs(*_BASE_DIRS, home, os.path.realpath(home), "/usr/share/java",
                           *glob.glob("/etc/java-*-openjdk")))


def _javascript() -> Toolchain:
    node = _which("node", "javascript")
    modules = os.path.join(TOOLCHAINS_DIR, "jest", "node_modules")
    jest = os.path.join(modules, "jest", "bin", "jest.js")
    if not os.path.isfile(jest):
        raise ToolchainMissing(f"javascript: jest not found at {jest} ({_INSTALL})")
    return Toolchain("javascript", {"node": node, "jest": jest, "node_modules": modules},
                     _dirs(*_BASE_DIRS, os.path.dirname(node), modules, os.path.realpath(modules),
                           "/usr/share/nodejs", "/usr/lib/node_modules"))


def _rust() -> Toolchain:
    rustc = shutil.which("rustc")
    if rustc is None:
        raise ToolchainMissing("rust: `rustc` not found on PATH (install Rust with rustup or apt-get install cargo)")
    sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True, check=False).stdout.strip()
    cargo = os.path.join(sysroot, "bin", "cargo")
    if not (sysroot and os.path.isfile(cargo)):
        raise ToolchainMissing(f"rust: no cargo beside rustc in {sysroot or rustc!r}")
    return Toolchain("rust", {"cargo": cargo, "rustc": os.path.join(sysroot, "bin", "rustc"),
                              "bin": os.path.dirname(cargo),
                              "registry": DEBIAN_CARGO_REGISTRY if os.path.isdir(DEBIAN_CARGO_REGISTRY) else ""},
                     _dirs(*_BASE_DIRS, os.path.realpath(sysroot), DEBIAN_CARGO_REGISTRY))


def _cpp() -> Toolchain:
    gxx, cmake, make = _which("g++", "cpp"), _which("cmake", "cpp"), _which("make", "cpp")
    return Toolchain("cpp", {"g++": gxx, "cmake": cmake, "make": make},
                     _dirs(*_BASE_DIRS, "/usr/include", "/usr/local/include", "/usr/libexec",
                           *glob.glob("/usr/share/cmake*")))


_FINDERS = {"cpp": _cpp, "go": _go, "java": _java, "javascript": _javascript, "python": _python, "rust": _rust}


@functools.cache
def toolchain(language: str) -> Toolchain:
    """The language's toolchain, or ToolchainMissing (one line: what is missing, how to install it)."""
    if language not in _FINDERS:
        raise ValueError(f"unknown language {language!r}; choose from {list(LANGUAGES)}")
    return _FINDERS[language]()


def available(language: str) -> str | None:
    """None when `language` can run here, else the one-line reason it cannot."""
    try:
        toolchain(language)
    except ToolchainMissing as e:
        return str(e)
    return None


def describe() -> str:
    """One line per language: ready, or why not."""
    return "\n".join(f"{lang:10s} {available(lang) or 'ready'}" for lang in LANGUAGES)


if __name__ == "__main__":
    print(describe())
