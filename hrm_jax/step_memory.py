"""The train step's memory, known before it is spent: XLA's memory analysis of the compiled step against the
device's memory, and the XLA CPU option that keeps that need low.

`compile_step(trainer, state, batch)` compiles the jitted train step once (logging when compilation starts and
ends, with its time), reads `compiled.memory_analysis()` and raises `StepMemoryError` (one line naming the fields
to lower) when the step cannot fit, instead of an allocator traceback at the first step.

On the CPU, XLA's default "concurrency-optimized" scheduler starts independent work early to use more threads,
which keeps the attention intermediates of every block alive at once (22.3 GiB for code-30m at 32 x 512 even
with per-block remat; 7.4 GiB with the memory-minimizing scheduler). `cpu_memory_flags()` is the XLA_FLAGS
setting entry points apply before JAX starts (hrm_jax.runtime).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import jax

from hrm_jax.progress import say

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
GIB = 2 ** 30


class StepMemoryError(MemoryError):
    """The compiled train step needs more memory than the device has; the message names the fields to lower."""


class CompilationInterrupted(Exception):
    """SIGTERM (or another stop request) arrived while the step was compiling."""


def cpu_memory_flags(xla_flags: str) -> str:
    """`xla_flags` with the memory-minimizing CPU scheduler unless the caller already chose one."""
    if CPU_SCHEDULER_FLAG in xla_flags:
        return xla_flags
    return f"{xla_flags} {CPU_SCHEDULER_FLAG}=false".strip()


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """Bytes per device of one compiled step: temporaries, arguments (state + batch), outputs not aliased to
    arguments (the donated state is updated in place), and generated code."""

    temp: int
    arguments: int
    outputs: int
    aliased: int
    code: int

    @property
    def total(self) -> int:
        return self.temp + self.arguments + max(self.outputs - self.aliased, 0) + self.code

    @classmethod
    def of(cls, compiled) -> "StepMemory | None":
        ma = compiled.memory_analysis()
        if ma is None:
            return None
        return cls(temp=int(ma.temp_size_in_bytes), arguments=int(ma.argument_size_in_bytes),
                   outputs=int(ma.output_size_in_bytes), aliased=int(ma.alias_size_in_bytes),
                   code=int(ma.generated_code_size_in_bytes))


def device_memory_bytes(device=None) -> tuple[int | None, str]:
    """(bytes one device can hold, where that number comes from). Accelerators report `bytes_limit`; a CPU
    device shares the host's RAM: its total, divided among the local CPU devices."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.device_kind} bytes_limit"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None, "unknown"
    n = max(1, len([d for d in jax.local_devices() if d.platform == device.platform]))
    return total // n, f"host RAM {total / GIB:.1f} GiB" + (f" / {n} CPU devices" if n > 1 else "")


def check_fits(memory: StepMemory, limit: int | None, source: str) -> str:
    """The one-line report of need vs memory; raises StepMemoryError when the step cannot fit."""
    need = memory.total
    line = (f"train step memory: {need / GIB:.2f} GiB per device (temporaries {memory.temp / GIB:.2f}, state + "
            f"batch {memory.arguments / GIB:.2f}) of {limit / GIB:.1f} GiB ({source})" if limit else
            f"train step memory: {need / GIB:.2f} GiB per device (device memory unknown)")
    if limit and need > limit:
        raise StepMemoryError(f"{line}: does not fit; lower data.global_batch_size or data.seq_len, or set "
                              "model.hrm_text.remat=True (HRM-Text), or use more devices")
    return line


def compile_step(trainer, state, batch, *, stop_requested=lambda: False, poll_s: float = 0.25):
    """The trainer's train step compiled for (state, batch), its memory checked against the device's.

    Compilation runs in a helper thread while this (main) thread polls `stop_requested` every `poll_s`, so a
    SIGTERM during a long compilation is acted on at once (CompilationInterrupted) rather than after it."""
    result: dict = {}

    def work():
        try:
            with jax.set_mesh(trainer.mesh):
                result["compiled"] = trainer.train_step.lower(state, batch).compile()
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            result["error"] = e

    say(f"compiling the train step ({trainer.family.name}, batch {trainer.global_batch} x {trainer.seq_len})...")
    start = time.perf_counter()
    thread = threading.Thread(target=work, name="compile-train-step", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_s)
        if thread.is_alive() and stop_requested():
            raise CompilationInterrupted(f"stopped while compiling (after {time.perf_counter() - start:.0f} s)")
    if "error" in result:
        raise result["error"]
    compiled = result["compiled"]
    say(f"compiled the train step in {time.perf_counter() - start:.1f} s")
    memory = StepMemory.of(compiled)
    if memory is not None:
        limit, source = device_memory_bytes()
        say(check_fits(memory, limit, source))
    return compiled
