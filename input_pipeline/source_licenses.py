"""Licences of source files outside Python packaging: from a file's own header, a crate's Cargo.toml, an npm
package's package.json, or the Debian copyright file of the package that installed it; and the allow-list rule
of the code corpus.

Licence names are SPDX-like expressions ("MIT OR Apache-2.0", "GPL-2.0-only WITH Classpath-exception-2.0").
`is_allowed_license` accepts an expression when one of its OR-alternatives has every AND-part on the allow-list.
The default list (`DEFAULT_ALLOWED_LICENSES`) holds the permissive licences plus the copyleft ones whose exception
or weak scope permits reuse of the code as training text next to other code: LGPL, MPL, the Classpath and GCC
runtime exceptions, the Linux syscall note. Plain GPL (no exception) and "unknown" are refused.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import tomllib

UNKNOWN_LICENSE = "unknown"
DEFAULT_ALLOWED_LICENSES = (
    "MIT", "MIT-0", "ISC", "0BSD", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "Apache-2.0 WITH LLVM-exception",
    "Zlib", "Unlicense", "CC0-1.0",
    "PSF-2.0", "BSL-1.0", "Unicode-DFS-2016", "Unicode-3.0", "BlueOak-1.0.0",
    "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-or-later", "MPL-2.0",
    "GPL-2.0-only WITH Classpath-exception-2.0", "GPL-3.0-or-later WITH GCC-exception-3.1",
    "GPL-2.0-only WITH Linux-syscall-note", "GPL-2.0-or-later WITH Linux-syscall-note",
)
# How far into a file its licence header is looked for.
_HEADER_CHARS = 4000
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+?)\s*(?:\*/|-->|$)", re.MULTILINE)
# (pattern on the header, licence), first match wins: the specific phrasings before the general ones.
_HEADER_RULES = (
    (re.compile(r"GNU General Public License version 2 only.*?\"?Classpath\"? exception", re.S | re.I),
     "GPL-2.0-only WITH Classpath-exception-2.0"),
    (re.compile(r"GNU General Public License.*?GCC Runtime Library Exception", re.S | re.I),
     "GPL-3.0-or-later WITH GCC-exception-3.1"),
    (re.compile(r"GNU General Public License version 2 only", re.I), "GPL-2.0-only"),
    (re.compile(r"GNU Lesser General Public\s+License", re.I), "LGPL-2.1-or-later"),
    (re.compile(r"GNU (Library|Lesser) General Public", re.I), "LGPL-2.0-or-later"),
    (re.compile(r"GNU General Public License", re.I), "GPL-2.0-or-later"),
    (re.compile(r"BSD-style license", re.I), "BSD-3-Clause"),
    (re.compile(r"Licensed under the Apache License,?\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Permission to use, copy, modify,? and(/or)? distribute this software", re.I), "ISC"),
    (re.compile(r"Redistribution and use in source and binary forms", re.I), "BSD-3-Clause"),
    (re.compile(r"Boost Software License", re.I), "BSL-1.0"),
    (re.compile(r"Mozilla Public License,? v(ersion)?\.? ?2\.0", re.I), "MPL-2.0"),
)
_COMMENT_RUN = re.compile(r"[\s/*#;!]+")
_OLD_SPDX = {"GPL-2.0": "GPL-2.0-only", "GPL-2.0+": "GPL-2.0-or-later", "LGPL-2.1": "LGPL-2.1-only",
             "LGPL-2.1+": "LGPL-2.1-or-later", "LGPL-2.0+": "LGPL-2.0-or-later", "GPL-3.0+": "GPL-3.0-or-later"}


def license_from_header(text: str) -> str | None:
    """The licence a file's header states: its SPDX-License-Identifier, else a recognised licence phrasing in its
    first 4,000 characters; None when it says nothing."""
    head = text[:_HEADER_CHARS]
    spdx = _SPDX.search(head)
    if spdx:
        return normalise_expression(spdx.group(1))
    flat = _COMMENT_RUN.sub(" ", head)  # phrases span comment lines: "BSD-style\n// license"
    for pattern, name in _HEADER_RULES:
        if pattern.search(flat):
            return name
    return None


def normalise_expression(expression: str) -> str:
    """Old SPDX ids to current ones, Cargo's "MIT/Apache-2.0" to "MIT OR Apache-2.0", outer parentheses off."""
    expr = expression.strip().strip("()").replace("/", " OR ")
    parts = re.split(r"(\s+(?:OR|AND|WITH|or|and|with)\s+)", expr)
    out = []
    for part in parts:
        if re.fullmatch(r"\s+(?:OR|AND|WITH|or|and|with)\s+", part):
            out.append(f" {part.strip().upper()} ")
        else:
            token = part.strip().strip("()")
            out.append(_OLD_SPDX.get(token, token))
    return "".join(out)


def is_allowed_license(expression: str, allowed: tuple[str, ...] | frozenset[str]) -> bool:
    """True when one OR-alternative of `expression` has every AND-part in `allowed` ("A WITH B" is one part)."""
    allowed = frozenset(allowed)
    for alternative in normalise_expression(expression).split(" OR "):
        parts = [p.strip().strip("()") for p in alternative.split(" AND ")]
        if parts and all(p in allowed for p in parts):
            return True
    return False


@functools.lru_cache(maxsize=None)
def cargo_license(crate_dir: str) -> str:
    """The `package.license` of a crate's Cargo.toml ("unknown" when absent or unreadable)."""
    try:
        manifest = tomllib.loads(pathlib.Path(crate_dir, "Cargo.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UNKNOWN_LICENSE
    value = manifest.get("package", {}).get("license")
    return normalise_expression(value) if isinstance(value, str) and value.strip() else UNKNOWN_LICENSE


@functools.lru_cache(maxsize=None)
def npm_license(package_dir: str) -> str:
    """The `license` of an npm package's package.json (also the old {"type": ...} and "licenses" forms)."""
    try:
        meta = json.loads(pathlib.Path(package_dir, "package.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return UNKNOWN_LICENSE
    value = meta.get("license") if isinstance(meta, dict) else None
    if isinstance(value, dict):
        value = value.get("type")
    if not value and isinstance(meta, dict) and isinstance(meta.get("licenses"), list):
        names = [x.get("type") for x in meta["licenses"] if isinstance(x, dict) and x.get("type")]
        value = " OR ".join(names)
    return normalise_expression(value) if isinstance(value, str) and value.strip() else UNKNOWN_LICENSE


@functools.lru_cache(maxsize=1)
def dpkg_file_owners(info_dir: str = "/var/lib/dpkg/info") -> dict[str, str]:
    """Installed path -> Debian package (from dpkg's *.list files); empty off Debian."""
    owners: dict[str, str] = {}
    if not os.path.isdir(info_dir):
        return owners
    for name in sorted(os.listdir(info_dir)):
        if name.endswith(".list"):
            package = name[:-5].split(":")[0]
            try:
                with open(os.path.join(info_dir, name), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        owners.setdefault(line.rstrip("\n"), package)
            except OSError:
                continue
    return owners


@functools.lru_cache(maxsize=None)
def debian_package_license(package: str, doc_dir: str = "/usr/share/doc") -> str:
    """The licence of a Debian package from its copyright file: the "Files: *" stanza of a machine-readable
    (DEP-5) file, else the licence phrasing of its text; "unknown" when neither says."""
    try:
        text = pathlib.Path(doc_dir, package, "copyright").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return UNKNOWN_LICENSE
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
            found = re.search(r"^License:\s*(\S[^\n]*)", stanza, re.M)
            if found:
                return normalise_expression(found.group(1))
    return license_from_header(text) or UNKNOWN_LICENSE
