"""Finding and killing every descendant of a process, for the sandbox monitor's cleanup."""
import os
import signal
import time

from . import syscalls

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Make orphaned descendants reparent to this process instead of init, so none escape cleanup."""
    syscalls.prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _parent_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1])  # state, then ppid


def descendants(root: int) -> list[int]:
    """Pids of all living (or zombie) descendants of `root`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, frontier = [], [root]
    while frontier:
        kids = children.get(frontier.pop(), [])
        found += kids
        frontier += kids
    return found


def _reap_children() -> bool:
    """Reap every exited child; True while some child is still running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def kill_descendants(rounds: int = 500) -> None:
    """SIGKILL every descendant of this process, reaping them, until none is left.

    Repeats because a fork bomb may fork between the scan and the kill; each round kills all
    it sees, so the tree shrinks until empty (orphans come back to us as subreaper).
    """
    for _ in range(rounds):
        alive = descendants(os.getpid())
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        running = _reap_children()
        if not alive and not running:
            return
        time.sleep(0.005)
