"""A root filesystem holding only what a sandboxed Python program needs, entered with pivot_root.

Inside: the interpreter (its binary's directory, its lib/ with the standard library, whose site-packages is
covered by an empty directory), the shared libraries (/lib*, /usr/lib*, /etc/ld.so.cache), the device nodes
null, zero, full, random and urandom, /proc, the packages the caller allows, all read-only, and the program's
work dir, a size-capped tmpfs. No project checkout, no data folder, no home, no host sockets, no /tmp.

Needs a private mount namespace (root, or a user namespace's root). Built at the caller's paths: a path
bound in keeps its name, so the interpreter finds its standard library where it was compiled to look.
"""
import os
import sysconfig

from . import syscalls

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_REC = 0x20, 0x1000, 0x4000
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME, _ST_RELATIME = 1024, 2048, 1 << 21, 4096
_MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")
_FILES = ("/etc/ld.so.cache",)
_DEVICES = ("null", "zero", "full", "random", "urandom")
_EMPTY_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def interpreter_dirs() -> tuple[list[str], list[str]]:
    """(directories to bind, site-packages directories inside them to cover) for this interpreter."""
    import sys

    paths = sysconfig.get_paths()
    binds = {os.path.dirname(os.path.realpath(sys.executable)), paths["stdlib"]}
    if os.path.isdir(os.path.join(paths["platstdlib"], "lib-dynload")):  # in a venv, platstdlib is the venv's
        binds.add(paths["platstdlib"])
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and os.path.isdir(libdir):
        binds.add(libdir)  # libpython*.so beside the standard library
    hidden = {os.path.join(d, "site-packages") for d in (paths["stdlib"], paths["platstdlib"])}
    hidden |= {paths["purelib"], paths["platlib"]}
    return sorted(os.path.realpath(b) for b in binds if os.path.isdir(b)), sorted(hidden)


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _bind(source: str, root: str, readonly: bool = True) -> None:
    target = _inside(root, source)
    if os.path.isdir(source):
        _mkdirs(target)
    else:
        _mkdirs(os.path.dirname(target))
        if not os.path.exists(target):
            open(target, "w").close()
    syscalls.mount(source, target, None, _MS_BIND | _MS_REC)
    if readonly:
        syscalls.mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _kept_flags(source))


def _kept_flags(path: str) -> int:
    """The source mount's nodev/noexec/atime flags: a user namespace may not drop them on remount."""
    flags = os.statvfs(path).f_flag
    kept = flags & (_MS_NODEV | _MS_NOEXEC | _MS_NOATIME | _MS_NODIRATIME)
    return kept | (_MS_RELATIME if flags & _ST_RELATIME else 0)


def _cover(root: str, path: str) -> str | None:
    """An empty tmpfs over `path` inside the root (where the path exists there); returns its mount point."""
    target = _inside(root, path)
    if not os.path.isdir(target):
        return None
    syscalls.mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,nr_inodes=1000,mode=755")
    return target


def _pivot_root(new_root: str, put_old: str) -> None:
    import platform

    syscalls.syscall(_PIVOT_ROOT[platform.machine()], os.fsencode(new_root), os.fsencode(put_old))


def supported() -> bool:
    import platform

    return platform.machine() in _PIVOT_ROOT


def _bind_toolchain(path: str, root: str) -> None:
    """`path` read-only at its own name; a symlink (e.g. /bin -> usr/bin) is recreated, its target bound."""
    if os.path.islink(path):
        link = _inside(root, path)
        if not os.path.lexists(link):
            _mkdirs(os.path.dirname(link))
            os.symlink(os.readlink(path), link)
        path = os.path.realpath(path)
    if os.path.exists(path):
        _bind(path, root)


def enter(root: str, *, binds: list[str], hidden: list[str], packages: list[str], workdir: str,
          workdir_bytes: int, uid: int, gid: int, toolchains: list[str] = ()) -> None:
    """Build the root at `root` (an empty directory), then make it `/` for this process and its children.

    `binds` and `toolchains` are bound read-only at their own paths, `hidden` paths inside them are covered, then the
    `packages` (package directories or module files) are bound read-only into the covered place; the work dir
    becomes a private tmpfs owned by uid:gid. Raises OSError on any failure before the pivot (the caller's
    namespace is then left with a half-built tree under `root`, which it can simply not use).
    """
    syscalls.mount("tmpfs", root, "tmpfs", _MS_NOSUID, "size=1m,nr_inodes=4000,mode=755")
    for directory in _LIBRARY_DIRS:
        if os.path.islink(directory):
            _mkdirs(os.path.dirname(_inside(root, directory)))
            os.symlink(os.readlink(directory), _inside(root, directory))
    for directory in _LIBRARY_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            _bind(directory, root)
    for path in _FILES:
        if os.path.isfile(path):
            _bind(path, root)
    for path in binds:
        _bind(path, root)
    for path in toolchains:
        _bind_toolchain(path, root)
    covers = [c for c in (_cover(root, path) for path in hidden) if c]
    for path in packages:
        _bind(path, root)
    for cover in covers:  # writable only while the packages' mount points were made in it
        syscalls.mount(None, cover, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    for device in _DEVICES:
        if os.path.exists(f"/dev/{device}"):
            _bind(f"/dev/{device}", root, readonly=False)
    for directory in _EMPTY_DIRS:
        _mkdirs(_inside(root, directory))
    _mkdirs(_inside(root, "/proc"))
    syscalls.mount("/proc", _inside(root, "/proc"), None, _MS_BIND | _MS_REC)
    work = _inside(root, workdir)
    _mkdirs(work)
    syscalls.mount("tmpfs", work, "tmpfs", _MS_NOSUID | _MS_NODEV,
                   f"size={workdir_bytes},nr_inodes=10000,mode=0700,uid={uid},gid={gid}")
    put_old = _inside(root, "/.old_root")
    _mkdirs(put_old)
    os.chmod(root, 0o755)
    _pivot_root(root, put_old)
    os.chdir("/")
    syscalls.umount("/.old_root", _MNT_DETACH)
    os.rmdir("/.old_root")
    syscalls.mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID)
