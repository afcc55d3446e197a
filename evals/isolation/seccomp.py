"""A seccomp-bpf filter that keeps a sandboxed program off the network and off kernel state shared with the
host or other runs. x86_64 and aarch64 only. Refused calls fail with EACCES; everything else is allowed.

  network     socket(2) for any family but AF_UNIX; io_uring (which can open sockets without socket(2)).
  unix paths  connect(2) and bind(2) (no socket reaches a host service or publishes one by path, and AF_INET
              ones cannot be made anyway), sendto(2) with an address, sendmsg/sendmmsg (which can carry one).
              socketpair(2) and send/recv on its ends stay usable.
  keyring     add_key, request_key, keyctl: the kernel keyring outlives a run and is keyed by uid.
  memory      memfd_create and memfd_secret (file memory outside RLIMIT_AS), SysV shmget/msgget/semget and
              POSIX mq_open (kernel-held memory outside RLIMIT_AS; the IPC namespace already keeps them per run).

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
_ARG = [16 + 8 * i for i in range(6)]  # offset of the low word of seccomp_data.args[i] (little endian)

_DENIED = ("io_uring_setup", "connect", "bind", "sendmsg", "sendmmsg", "add_key", "request_key", "keyctl",
           "memfd_create", "memfd_secret", "shmget", "msgget", "semget", "mq_open")

# machine -> (AUDIT_ARCH_*, {syscall: number})
_ARCHES = {
    "x86_64": (0xC000003E, {
        "socket": 41, "connect": 42, "sendto": 44, "sendmsg": 46, "bind": 49, "sendmmsg": 307,
        "add_key": 248, "request_key": 249, "keyctl": 250, "memfd_create": 319, "memfd_secret": 447,
        "shmget": 29, "semget": 64, "msgget": 68, "mq_open": 240, "io_uring_setup": 425}),
    "aarch64": (0xC00000B7, {
        "socket": 198, "connect": 203, "sendto": 206, "sendmsg": 211, "bind": 200, "sendmmsg": 269,
        "add_key": 217, "request_key": 218, "keyctl": 219, "memfd_create": 279, "memfd_secret": 447,
        "shmget": 194, "semget": 190, "msgget": 186, "mq_open": 180, "io_uring_setup": 425}),
}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _program(arch: int, numbers: dict[str, int]) -> bytes:
    """The filter: checks run top to bottom, each jumping to one of the two final instructions (allow, deny)."""
    body: list[tuple] = [  # (code, k, jt, jf) with jt/jf as "allow" / "deny" / "next" labels
        (_LD_W_ABS, 4, None, None),
        (_JEQ_K, arch, "next", "deny"),                  # a foreign ABI (i386 socketcall, ...) -> deny
        (_LD_W_ABS, 0, None, None),
        (_JGE_K, _X32_SYSCALL_BIT, "deny", "next"),      # the x32 ABI -> deny
    ]
    for name in _DENIED:
        body.append((_JEQ_K, numbers[name], "deny", "next"))
    body += [
        (_JEQ_K, numbers["socket"], "next", "skip2"),    # socket: AF_UNIX only
        (_LD_W_ABS, _ARG[0], None, None),
        (_JEQ_K, _AF_UNIX, "allow", "deny"),
        (_JEQ_K, numbers["sendto"], "next", "allow"),    # sendto: only without an address (args[4] == 0)
        (_LD_W_ABS, _ARG[4], None, None),
        (_JEQ_K, 0, "next", "deny"),
        (_LD_W_ABS, _ARG[4] + 4, None, None),
        (_JEQ_K, 0, "allow", "deny"),
    ]
    allow, deny = len(body), len(body) + 1
    code = []
    for index, (op, k, jt, jf) in enumerate(body):
        def offset(label):
            if label is None or label == "next":
                return 0
            if label == "skip2":  # past the two instructions of the socket family check
                return 2
            return (allow if label == "allow" else deny) - index - 1
        code.append(_insn(op, k, offset(jt), offset(jf)))
    code += [_insn(_RET_K, _RET_ALLOW), _insn(_RET_K, _RET_ERRNO | errno.EACCES)]
    return b"".join(code)


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
