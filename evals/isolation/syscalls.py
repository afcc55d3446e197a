"""The C library through ctypes, with failures raised as OSError."""
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)


def _checked(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def _c_string(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def syscall(number: int, *args) -> int:
    """Raw syscall(2); integer arguments are passed as C longs."""
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _checked(_libc.syscall(ctypes.c_long(number), *converted))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _checked(_libc.prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5))))


def unshare(flags: int) -> None:
    _checked(_libc.unshare(ctypes.c_int(flags)))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _checked(_libc.mount(_c_string(source), _c_string(target), _c_string(fstype),
                         ctypes.c_ulong(flags), _c_string(data)))


def umount(target: str, flags: int = 0) -> None:
    _checked(_libc.umount2(_c_string(target), ctypes.c_int(flags)))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def clear_capabilities() -> None:
    """Empty this thread's effective, permitted and inheritable capability sets (capset(2))."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two data structs
    data = (_CapData * 2)()
    _checked(_libc.capset(ctypes.byref(header), data))
