"""Fresh Linux namespaces and mounts for one sandboxed run.

Everything here is best effort: each helper reports what it managed, and the caller falls back
to weaker layers for what it did not (see evals/sandbox.py for the layering).
"""
import os
import stat

from . import syscalls

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000

_NAMES = {CLONE_NEWUSER: "userns", CLONE_NEWNET: "netns", CLONE_NEWPID: "pidns", CLONE_NEWNS: "mountns",
          CLONE_NEWIPC: "ipcns"}


def _names(flags: int) -> list[str]:
    return [name for flag, name in _NAMES.items() if flags & flag]


def _try_unshare(flags: int) -> bool:
    try:
        syscalls.unshare(flags)
    except OSError:
        return False
    return True


def _map_own_ids() -> None:
    """Inside a fresh user namespace, map our uid/gid to themselves (so files keep their owner)."""
    uid, gid = os.geteuid(), os.getegid()
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def enter_fresh_namespaces(is_root: bool) -> list[str]:
    """Unshare network, pid, mount and IPC namespaces (plus a user namespace when not root).

    The pid namespace applies to children only: the caller's next fork becomes its pid 1.
    A fresh IPC namespace gives the run its own SysV objects and POSIX message queues, destroyed with it.
    Returns the names of the namespaces entered, e.g. ["netns", "pidns", "mountns", "ipcns"].
    """
    wanted = CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC
    if is_root:
        if _try_unshare(wanted):
            return _names(wanted)
        return [name for flag, name in _NAMES.items() if flag & wanted and _try_unshare(flag)]
    for flags in (CLONE_NEWUSER | wanted, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC, CLONE_NEWUSER | CLONE_NEWNET):
        if _try_unshare(flags):
            try:
                _map_own_ids()
            except OSError:
                pass  # unmapped ids show as the overflow uid; the namespaces still hold
            return _names(flags)
    return []


def make_mounts_private() -> None:
    """Stop mounts made from here on from propagating back to the host."""
    syscalls.mount(None, "/", None, _MS_REC | _MS_PRIVATE)


def mount_tmpfs(path: str, size_bytes: int, uid: int, gid: int, max_inodes: int = 10_000) -> None:
    """A size-capped private tmpfs over `path`, owned by uid:gid; it vanishes with the namespace."""
    options = f"size={size_bytes},nr_inodes={max_inodes},mode=0700,uid={uid},gid={gid}"
    syscalls.mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, options)


def mount_proc() -> None:
    """A /proc that shows only the current pid namespace (call in a fresh mount namespace)."""
    syscalls.mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def _can_traverse(info: os.stat_result, uid: int, gid: int) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _blocking_ancestor(path: str, uid: int, gid: int) -> str | None:
    """The top-most proper ancestor of `path` that uid:gid may not traverse, if any."""
    parts = path.strip("/").split("/")
    for depth in range(len(parts)):
        ancestor = "/" + "/".join(parts[:depth])
        if not _can_traverse(os.stat(ancestor), uid, gid):
            return ancestor
    return None


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _make_traversable_dirs(top: str, path: str) -> None:
    """mkdir -p from `top` down to `path`, each new directory mode 0755 whatever the umask."""
    current = top
    for part in os.path.relpath(path, top).split("/"):
        current = os.path.join(current, part)
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o755)


def cover(directory: str, keep: list[str], mode: int) -> None:
    """Hide `directory` under an empty root-owned tmpfs of `mode`, except the `keep` paths inside it.

    Each kept path is held by an O_PATH descriptor before the cover goes on, then bind-mounted
    back at its own path through /proc/self/fd. Needs a private mount namespace.
    """
    held = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in keep}
    try:
        syscalls.mount("tmpfs", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode={mode:o},size=1m,nr_inodes=1000")
        for path, fd in held.items():
            _make_traversable_dirs(directory, path)
            syscalls.mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
    finally:
        for fd in held.values():
            os.close(fd)


def expose_to(dirs: list[str], uid: int, gid: int) -> list[str]:
    """Make `dirs` reachable by uid:gid at their own paths when an ancestor is closed to it.

    Typical case: the interpreter lives under /root (mode 0700) and the sandbox user cannot
    import the standard library. Each closed ancestor is covered (see `cover`) keeping just the
    needed directories; everything else under it is hidden. Returns the directories exposed.
    """
    dirs = _outermost([os.path.realpath(d) for d in dirs if os.path.isdir(d)])
    by_ancestor: dict[str, list[str]] = {}
    for path in dirs:
        ancestor = _blocking_ancestor(path, uid, gid)
        if ancestor is not None and ancestor != "/":
            by_ancestor.setdefault(ancestor, []).append(path)
    for ancestor, paths in sorted(by_ancestor.items()):
        cover(ancestor, paths, 0o755)
    return [path for paths in by_ancestor.values() for path in paths]


SHARED_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/run/lock", "/var/lock")


def seal_shared_dirs(keep: list[str]) -> list[str]:
    """Cover the world-writable directories with read-only (0555) tmpfs, keeping `keep` paths.

    Returns the directories sealed.
    """
    sealed = []
    for directory in SHARED_WRITABLE_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory) and os.stat(directory).st_mode & stat.S_IWOTH:
            real = os.path.realpath(directory)
            cover(real, [p for p in keep if p.startswith(real + "/")], 0o555)
            sealed.append(directory)
    return sealed
