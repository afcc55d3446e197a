"""Landlock: confine file writes to chosen paths, deny TCP, and scope signals (Linux >= 5.13).

Unprivileged, inherited by all descendants, and irreversible. Each feature is used only where
the kernel's Landlock ABI has it; the result says which were applied.
"""
import ctypes
import os
import struct

from . import syscalls

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # same numbers on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_WRITE_FILE = 1 << 1
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE_CHAR, _MAKE_DIR, _MAKE_REG, _MAKE_SOCK = 1 << 6, 1 << 7, 1 << 8, 1 << 9
_MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_WRITES_V1 = (_WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_CHAR | _MAKE_DIR | _MAKE_REG
              | _MAKE_SOCK | _MAKE_FIFO | _MAKE_BLOCK | _MAKE_SYM)
_FILE_RIGHTS = _WRITE_FILE | _TRUNCATE  # the only write rights a rule on a non-directory may hold


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    try:
        return syscalls.syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0


def _handled_writes(abi: int) -> int:
    return _WRITES_V1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)


def _add_path_rule(ruleset: int, path: str, allowed: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, fd))  # packed struct
        syscalls.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0)
    finally:
        os.close(fd)


def restrict(writable_dirs: list[str], writable_files: list[str]) -> list[str]:
    """Allow writes only beneath `writable_dirs` and to `writable_files`; deny TCP; scope signals.

    Reading stays unrestricted. Sets no_new_privs (required). Returns the layers applied:
    "landlock-fs", plus "landlock-tcp" (ABI >= 4) and "landlock-scope" (ABI >= 6), or [].
    """
    try:
        return _restrict(writable_dirs, writable_files)
    except OSError:  # e.g. a container's seccomp profile refusing the landlock syscalls
        return []


def _restrict(writable_dirs: list[str], writable_files: list[str]) -> list[str]:
    abi = abi_version()
    if abi < 1:
        return []
    writes = _handled_writes(abi)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    attr = ctypes.create_string_buffer(struct.pack("=QQQ", writes, net, scoped)[:size])
    ruleset = syscalls.syscall(_CREATE_RULESET, attr, size, 0)
    try:
        for path in writable_dirs:
            _add_path_rule(ruleset, path, writes)
        for path in writable_files:
            _add_path_rule(ruleset, path, writes & _FILE_RIGHTS)
        syscalls.prctl(_PR_SET_NO_NEW_PRIVS, 1)
        syscalls.syscall(_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)
    return ["landlock-fs"] + (["landlock-tcp"] if net else []) + (["landlock-scope"] if scoped else [])
