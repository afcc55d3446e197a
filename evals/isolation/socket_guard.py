"""In-process fallback network block: Python-level socket creation refuses all but AF_UNIX.

Much weaker than a network namespace or seccomp: code that reaches the original classes (e.g.
through `__mro__`) or calls libc via ctypes gets past it. Used only when neither kernel
mechanism is available.
"""
import errno
import socket

_REFUSAL = "network access is disabled in the sandbox"


def _refuse() -> None:
    raise PermissionError(errno.EACCES, _REFUSAL)


def install() -> None:
    import _socket

    original_init = socket.socket.__init__
    raw_socket = _socket.socket

    def guarded_init(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family != socket.AF_UNIX:
            _refuse()
        original_init(self, family, type, proto, fileno)
        if self.family != socket.AF_UNIX:
            self.close()
            _refuse()

    class GuardedRawSocket(raw_socket):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is not None or family != socket.AF_UNIX:
                _refuse()
            super().__init__(family, type, proto, fileno)

    socket.socket.__init__ = guarded_init
    _socket.socket = _socket.SocketType = GuardedRawSocket
