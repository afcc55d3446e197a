"""Scale of the train step per model shape, from the compiled step alone (no array is materialised): compile
time, XLA's memory analysis (`compiled.memory_analysis()`) and XLA's cost-analysis FLOPs (with the family's
formula beside them), remat off vs on and unrolled vs looped (`model.hrm_text.loop_cycles`, `model.hrm.loop_cycles`),
side by side.

    python benchmarks/scale.py                                   # every shape, remat and loop_cycles off / on
    python benchmarks/scale.py --shapes=code-30m,hrm-27m-sudoku --batch=4 --seq_len=256
    python benchmarks/scale.py --write                           # also replace the section in benchmarks/RESULTS.md
    python benchmarks/scale.py --shapes=hrm-text-1b --fsdp=8 --batch_1b=8   # state and batch over 8 devices

Shapes: HRM-Text presets code-30m, code-100m, hrm-text-1b (configs/mbpp.py:gpu, unshrunk, with
`model.hrm_text.preset`; code-30m also with L_cycles 8, `code-30m-L8`, and H_cycles 4 / 8, `code-30m-H4` /
`-H8`) and the puzzle HRM-27M on Sudoku (configs/sudoku.py; no remat switch: "n/a"; loop =
`model.hrm.loop_cycles`), also with 8 x 8 cycles (`hrm-27m-sudoku-8x8`). The step is lowered from
`Trainer.abstract_state` and `Trainer.example_batch` (jax.ShapeDtypeStruct), so even the 1B shape is compiled
without allocating its parameters. Each variant runs in its own process (a failed or killed compile costs only
its row). XLA's cost analysis counts a loop body once, so a looped row's FLOPs undercount the step (its
gradient-free L calls count once); the unrolled rows' count is the step's.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GIB = 2 ** 30
SHAPES = {  # name -> (config, preset or "", default seq_len, vocab)
    "code-30m": ("configs/mbpp.py:gpu", "code-30m", 512, 16384),
    "code-100m": ("configs/mbpp.py:gpu", "code-100m", 512, 16384),
    "hrm-text-1b": ("configs/mbpp.py:gpu", "hrm-text-1b", 2048, 65536),
    "hrm-27m-sudoku": ("configs/sudoku.py", "", 81, 11),
    "hrm-27m-sudoku-8x8": ("configs/sudoku.py", "", 81, 11),  # H_cycles = L_cycles = 8: compile time vs cycles
    "code-30m-L8": ("configs/mbpp.py:gpu", "code-30m", 512, 16384),  # L_cycles 8 (2 graded, as the preset's)
    "code-30m-H4": ("configs/mbpp.py:gpu", "code-30m", 512, 16384),  # H_cycles 4 (every H call graded)
    "code-30m-H8": ("configs/mbpp.py:gpu", "code-30m", 512, 16384),  # H_cycles 8
}
CYCLES = {"hrm-27m-sudoku-8x8": 8}  # puzzle shapes with more cycles than the paper's 2 x 2
HRM_TEXT_CYCLES = {"code-30m-L8": {"L_cycles": 8}, "code-30m-H4": {"H_cycles": 4},  # overrides of the preset
                   "code-30m-H8": {"H_cycles": 8}}
SECTION = "## Train-step scale from the compiled step (benchmarks/scale.py)"


REMAT_MODES = {"off": (False, False), "on": (True, False), "cycle": (False, True), "both": (True, True)}


def measure(shape: str, remat: bool | str, batch: int, seq_len: int | None, loop: bool = False,
            fsdp: int = 1, scan: bool = False) -> dict:
    """One (shape, remat, loop) row, in this process; `remat`: a REMAT_MODES name (True = "on", per block);
    `fsdp` > 1: parameters, optimizer state and the batch sharded over that many devices (mesh (1, fsdp, 1)),
    memory per device. `scan`: HRM-Text's `scan_layers` (the loop column says "+ scan")."""
    remat = {True: "on", False: "off"}.get(remat, remat)
    block_remat, cycle_remat = REMAT_MODES[remat]
    import jax  # noqa: PLC0415

    from benchmarks.train_throughput import data_spec, load_config  # noqa: PLC0415
    from hrm_jax import families, parallel, step_memory, train  # noqa: PLC0415

    path, preset, default_seq, vocab = SHAPES[shape]
    config = load_config(path)
    config.data.global_batch_size = batch
    if preset:
        config.model.hrm_text.preset = preset
        config.model.hrm_text.remat = block_remat
        config.model.hrm_text.remat_cycles = cycle_remat
        config.model.hrm_text.scan_layers = scan
        config.model.hrm_text.loop_cycles = loop
        for key, value in HRM_TEXT_CYCLES.get(shape, {}).items():
            config.model.hrm_text[key] = value
    else:
        config.model.hrm.loop_cycles = loop
        config.model.hrm.H_cycles = config.model.hrm.L_cycles = CYCLES.get(shape, config.model.hrm.H_cycles)
    spec = data_spec(config, seq_len or default_seq, vocab)
    family = families.build_family(config, spec.as_dict())
    trainer = train.Trainer(config, family, spec.seq_len, parallel.make_mesh((1, fsdp, 1), jax.devices()[:fsdp]))
    start = time.perf_counter()
    with jax.set_mesh(trainer.mesh):
        lowered = trainer.train_step.lower(trainer.abstract_state, trainer.example_batch)
        compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    mem = step_memory.StepMemory.of(compiled)
    xla = step_memory.compiled_flops(compiled)
    formula = family.flops_per_token() * batch * spec.seq_len / fsdp  # per device, as XLA counts the SPMD program
    return {"shape": shape, "remat": remat if preset else "n/a",
            "loop": ("on" if loop else "off") + (" + scan" if scan and preset else ""), "fsdp": fsdp,
            "params": family.num_params(),
            "batch": batch, "seq_len": spec.seq_len, "compile_s": compile_s,
            "step_gib": mem.total / GIB if mem else None, "temp_gib": mem.temp / GIB if mem else None,
            "state_gib": mem.arguments / GIB if mem else None, "xla_flops": xla, "formula_flops": formula}


def _row(r: dict) -> str:
    if "error" in r:
        return f"| {r['shape']} | {r['remat']} | {r.get('loop', 'off')} | {r.get('fsdp', 1)} | | | | | | | | {r['error']} |"
    ratio = f"{r['xla_flops'] / r['formula_flops']:.2f}" if r["xla_flops"] else "-"
    return (f"| {r['shape']} | {r['remat']} | {r.get('loop', 'off')} | {r.get('fsdp', 1)} | {r['params'] / 1e6:.1f}M | "
            f"{r['batch']} x {r['seq_len']} | "
            f"{r['compile_s']:.1f} | {r['step_gib']:.2f} | {r['temp_gib']:.2f} | {(r['xla_flops'] or 0):.3e} | "
            f"{r['formula_flops']:.3e} | {ratio} |")


def table(results: list[dict]) -> str:
    head = ("| shape | remat | loop | fsdp | params | batch x seq | compile s | step GiB | temp GiB | XLA FLOPs/step "
            "per device | formula FLOPs/step per device | XLA/formula |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([head] + [_row(r) for r in results])


def write_section(text: str, path: pathlib.Path = REPO / "benchmarks" / "RESULTS.md", section: str = SECTION) -> None:
    """Replace (or append) the `section` (its heading line) of RESULTS.md with `text`."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    heading = section + "\n"
    if heading in old:
        before, _, after = old.partition(heading)
        rest = after.split("\n## ", 1)
        old = before.rstrip("\n") + ("\n\n## " + rest[1] if len(rest) > 1 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + heading + "\n" + text + "\n", encoding="utf-8")


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--batch", type=int, default=8, help="global batch (the 1B shape uses --batch_1b)")
    p.add_argument("--batch_1b", type=int, default=1)
    p.add_argument("--seq_len", type=int, default=0, help="0 = the shape's own (512, 2048 for 1B, 81 Sudoku)")
    p.add_argument("--remat", default="off,on", help="off | on (per block, model.hrm_text.remat) | cycle (per H "
                   "cycle, model.hrm_text.remat_cycles) | both")
    p.add_argument("--loop", default="off,on", help="model.hrm_text / model.hrm loop_cycles variants")
    p.add_argument("--fsdp", type=int, default=1, help="devices the state and batch are sharded over (fake CPU "
                   "devices; memory per device)")
    p.add_argument("--scan", action="store_true", help="HRM-Text shapes with model.hrm_text.scan_layers")
    p.add_argument("--timeout_s", type=int, default=1800, help="per variant")
    p.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child: shape:remat
    args = p.parse_args(argv)
    if args.one:
        shape, remat, loop = (args.one.split(":") + ["off"])[:3]
        batch = args.batch_1b if shape == "hrm-text-1b" else args.batch
        print(json.dumps(measure(shape, remat, batch, args.seq_len or None, loop == "on", args.fsdp, args.scan)))
        return []
    from hrm_jax import step_memory  # noqa: PLC0415 (no jax import in the parent)
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
               XLA_FLAGS=step_memory.cpu_memory_flags(" ".join(
                   [f for f in os.environ.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
                   + [f"--xla_force_host_platform_device_count={args.fsdp}"])))
    results = []
    for shape in args.shapes.split(","):
        if shape not in SHAPES:
            raise SystemExit(f"--shapes: unknown shape {shape!r} (one of {sorted(SHAPES)})")
        hrm_text = bool(SHAPES[shape][1])
        variants = [(r, lp) for lp in args.loop.split(",") for r in (args.remat.split(",") if hrm_text else ["off"])]
        for remat, loop in variants:
            cmd = [sys.executable, __file__, f"--one={shape}:{remat}:{loop}", f"--batch={args.batch}",
                   f"--batch_1b={args.batch_1b}", f"--seq_len={args.seq_len}", f"--fsdp={args.fsdp}"]
            cmd += ["--scan"] if args.scan else []
            try:
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout_s)
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                r = json.loads(lines[-1]) if out.returncode == 0 and lines else {
                    "error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
            except subprocess.TimeoutExpired:
                r = {"error": f"compile not finished in {args.timeout_s} s"}
            r.setdefault("shape", shape)
            r.setdefault("remat", remat if hrm_text else "n/a")
            r.setdefault("loop", loop)
            results.append(r)
            print(_row(r), flush=True)
            if args.write:  # after every row: a long compile later on does not lose the rows before it
                fsdp = f", fsdp {args.fsdp}" if args.fsdp > 1 else ""
                write_section(_header(args) + table(results), section=f"{SECTION}, loop_cycles {args.loop}{fsdp}")
    print(table(results))
    return results


def _header(args) -> str:
    import platform  # noqa: PLC0415
    return (f"`python benchmarks/scale.py --shapes={args.shapes} --loop={args.loop} --batch={args.batch} "
            f"--batch_1b={args.batch_1b}{f' --fsdp={args.fsdp}' if args.fsdp > 1 else ''} --write` on "
            f"{platform.machine()} CPU ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}), XLA's memory-"
            "minimizing CPU scheduler. Step GiB = XLA's memory analysis of the compiled step per device "
            "(temporaries + state + batch + unaliased outputs); FLOPs per device from XLA's cost analysis vs the "
            "family's formula (`flops_per_token`) over the devices. The 1B shape is compiled from abstract arrays "
            "only.\n\n")


if __name__ == "__main__":
    main()
