"""A seccomp-bpf filter that refuses network sockets: socket(2) for any family but AF_UNIX,
and io_uring (which can open sockets without socket(2)). x86_64 and aarch64 only.

Unprivileged after no_new_privs, inherited by all descendants, irreversible.
"""
import ctypes
import errno
import platform
import struct

from . import syscalls

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_AF_UNIX = 1
_X32_SYSCALL_BIT = 0x40000000

# machine -> (AUDIT_ARCH_*, socket, io_uring_setup)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _program(arch: int, socket_nr: int, io_uring_nr: int) -> bytes:
    deny = _RET_ERRNO | errno.EACCES
    return b"".join([
        _insn(_LD_W_ABS, 4),                            # 0: A = seccomp_data.arch
        _insn(_JEQ_K, arch, 0, 7),                      # 1: foreign ABI -> deny (9)
        _insn(_LD_W_ABS, 0),                            # 2: A = seccomp_data.nr
        _insn(_JGE_K, _X32_SYSCALL_BIT, 5, 0),          # 3: x32 ABI -> deny (9)
        _insn(_JEQ_K, socket_nr, 0, 2),                 # 4: socket? else -> 7
        _insn(_LD_W_ABS, 16),                           # 5: A = low word of args[0] (family)
        _insn(_JEQ_K, _AF_UNIX, 1, 2),                  # 6: AF_UNIX -> allow (8), else deny (9)
        _insn(_JEQ_K, io_uring_nr, 1, 0),               # 7: io_uring_setup -> deny (9)
        _insn(_RET_K, _RET_ALLOW),                      # 8
        _insn(_RET_K, deny),                            # 9
    ])


def supported() -> bool:
    return platform.machine() in _ARCHES


def deny_network_sockets() -> bool:
    """Install the filter on this thread (and all it will fork). False where unsupported."""
    if not supported():
        return False
    code = _program(*_ARCHES[platform.machine()])
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.addressof(buffer))
    try:
        syscalls.prctl(_PR_SET_NO_NEW_PRIVS, 1)
        syscalls.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))
    except OSError:
        return False
    return True
