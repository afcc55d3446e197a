"""Benchmark: peak host memory of `hrm_jax.hf.from_pretrained` on a synthetic ~1B HRM-Text checkpoint.

    python benchmarks/hf_load_memory.py [--preset hrm-text-1b] [--shards 4] [--dir /tmp] [--keep]

Writes a Hugging Face HRM-Text folder of the preset's shape in bf16 (config.json, generation_config.json, and
model.safetensors or `--shards` shards + model.safetensors.index.json), tensor by tensor in chunks (the writer holds
one small block of values, repeated, never a whole tensor), into a temp folder under `--dir` that is deleted
afterwards. Then, in a fresh Python process, it loads the folder with `from_pretrained(path, dtype=jnp.bfloat16)`
and reports:

  baseline RSS    after importing jax / hrm_jax and starting the CPU backend, before the load
  peak RSS        VmHWM and getrusage ru_maxrss (the process's high-water mark, file-backed pages included),
                  and the largest anonymous / file-backed RSS seen by a 20 ms sampler during the load
  final           RSS after the load, and the bytes of the loaded model's arrays

`--param_dtype bfloat16` (the default: inference) stores the parameters as the checkpoint's bf16, so the loaded
model is 1x the checkpoint; `--param_dtype float32` (training: fp32 master weights) makes it 2x. Read "peak RSS /
checkpoint" against that floor, and "peak - baseline - model bytes" as what the loader itself holds beyond the
result (ideally about one tensor).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GiB = 1024 ** 3
CHUNK_ELEMS = 1 << 22  # 8 MiB of bf16 per write


def _bf16_block(seed: int = 0) -> bytes:
    import ml_dtypes

    rng = np.random.default_rng(seed)
    return (rng.standard_normal(CHUNK_ELEMS, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16).tobytes()


def write_safetensors(file: Path, specs: list[tuple[str, tuple[int, ...]]], block: bytes) -> int:
    """A bf16 safetensors file (metadata format=pt) holding `specs`, streamed: header, then each tensor's bytes
    taken from `block` repeated. Returns the file's size."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in specs:
        n = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes with spaces
    with open(file, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for _, shape in specs:
            left = 2 * int(np.prod(shape))
            while left:
                piece = block[:min(left, len(block))]
                f.write(piece)
                left -= len(piece)
    return file.stat().st_size


def write_checkpoint(path: Path, preset: str, shards: int) -> tuple[int, int]:
    """The folder for `preset` in bf16; returns (bytes of tensors on disk, number of tensors)."""
    from safetensors import safe_open

    from hrm_jax import hf
    from hrm_jax.model.hrm_text import PRESETS

    config = PRESETS[preset]
    specs = [(s.name, s.shape) for s in hf.tensor_specs(config)]
    block = _bf16_block()
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config.to_hf_dict(dtype="bfloat16"), indent=2, sort_keys=True))
    (path / "generation_config.json").write_text(json.dumps(hf.generation_config(config), indent=2, sort_keys=True))
    total = 0
    if shards <= 1:
        total = write_safetensors(path / hf.SAFETENSORS_FILE, specs, block)
        files = [path / hf.SAFETENSORS_FILE]
    else:  # consecutive groups of about equal bytes, as transformers' max_shard_size sharding makes
        sizes = [2 * int(np.prod(shape)) for _, shape in specs]
        target, groups, acc = sum(sizes) / shards, [[]], 0
        for spec, size in zip(specs, sizes):
            if acc >= target * len(groups) and len(groups) < shards:
                groups.append([])
            groups[-1].append(spec)
            acc += size
        weight_map, files = {}, []
        for i, group in enumerate(groups):
            name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            total += write_safetensors(path / name, group, block)
            weight_map.update({n: name for n, _ in group})
            files.append(path / name)
        index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
        (path / hf.SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True))
    n = 0
    for file in files:  # the files parse as safetensors (header only: no tensor is read)
        with safe_open(str(file), framework="np") as f:
            n += len(list(f.keys()))
    assert n == len(specs), (n, len(specs))
    return total, n


# The measuring child: a fresh interpreter, so no memory of the writer or of an earlier load counts.
CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, sys.argv[2])

def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0]) * 1024
    return out

import jax, jax.numpy as jnp
from flax import nnx
from hrm_jax import hf
jnp.zeros(8).block_until_ready()  # start the CPU backend before the baseline
base = status()
peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
stop = threading.Event()

def sampler():
    while not stop.is_set():
        s = status()
        for k in peak:
            peak[k] = max(peak[k], s.get(k, 0))
        time.sleep(0.02)

thread = threading.Thread(target=sampler, daemon=True)
thread.start()
t0 = time.perf_counter()
model = hf.from_pretrained(sys.argv[1], dtype=jnp.bfloat16, param_dtype=jnp.dtype(sys.argv[3]))
state = nnx.state(model)
jax.block_until_ready(state)
seconds = time.perf_counter() - t0
stop.set(); thread.join()
end = status()
leaves = jax.tree.leaves(state)
print(json.dumps({
    "seconds": seconds, "baseline": base, "end": end, "sampled_peak": peak,
    "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "model_bytes": int(sum(x.nbytes for x in leaves)),
    "param_dtypes": sorted({str(x.dtype) for x in leaves}),
    "num_params": int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))),
    "compute_dtype": str(jnp.dtype(model.dtype)),
}))
"""


def measure(path: Path, param_dtype: str) -> dict:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), repo, param_dtype], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"the loading process failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from hrm_jax.model.hrm_text import PRESETS, num_params

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="hrm-text-1b", choices=sorted(PRESETS))
    p.add_argument("--shards", type=int, default=4, help="0 or 1: a single model.safetensors")
    p.add_argument("--dir", default="/tmp", help="where the temp checkpoint folder goes")
    p.add_argument("--keep", action="store_true", help="keep the checkpoint folder (its path is printed)")
    p.add_argument("--param_dtype", default="bfloat16", choices=("bfloat16", "float32"),
                   help="parameter storage: bfloat16 (inference) or float32 (training)")
    args = p.parse_args(argv)

    config = PRESETS[args.preset]
    expected = 2 * num_params(config) + 2 * config.hidden_size
    free = shutil.disk_usage(args.dir).free
    print(f"preset {args.preset}: {num_params(config):,} parameters, bf16 checkpoint ~{expected / GiB:.2f} GiB; "
          f"free on {args.dir}: {free / GiB:.1f} GiB")
    if free < expected + 2 * GiB:
        print(f"not enough free disk on {args.dir} (need ~{(expected + 2 * GiB) / GiB:.1f} GiB): pick a smaller "
              "--preset or another --dir")
        return 1

    root = Path(tempfile.mkdtemp(prefix="hrm_text_ckpt_", dir=args.dir))
    try:
        t0 = time.perf_counter()
        ckpt_bytes, n_tensors = write_checkpoint(root, args.preset, args.shards)
        write_s = time.perf_counter() - t0
        files = sorted(f.name for f in root.glob("*.safetensors"))
        print(f"wrote {n_tensors} tensors, {len(files)} file(s), {ckpt_bytes / GiB:.3f} GiB in {write_s:.1f} s "
              f"({root})")
        r = measure(root, args.param_dtype)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    base, end, peak = r["baseline"]["VmRSS"], r["end"]["VmRSS"], r["end"]["VmHWM"]
    model = r["model_bytes"]
    anon = r["sampled_peak"]["RssAnon"] - r["baseline"]["RssAnon"]
    filed = r["sampled_peak"]["RssFile"] - r["baseline"]["RssFile"]
    print(f"loaded: {r['num_params']:,} params, arrays {sorted(r['param_dtypes'])}, compute dtype "
          f"{r['compute_dtype']}, in {r['seconds']:.1f} s")
    print()
    rows = [
        ("checkpoint on disk (bf16)", ckpt_bytes, 1.0),
        ("loaded model arrays", model, model / ckpt_bytes),
        ("baseline RSS (imports, before load)", base, base / ckpt_bytes),
        ("peak RSS (VmHWM)", peak, peak / ckpt_bytes),
        ("peak RSS (ru_maxrss)", r["ru_maxrss"], r["ru_maxrss"] / ckpt_bytes),
        ("peak - baseline", peak - base, (peak - base) / ckpt_bytes),
        ("sampled peak RssAnon - baseline", anon, anon / ckpt_bytes),
        ("sampled peak RssFile - baseline (mmap)", filed, filed / ckpt_bytes),
        ("RSS after load", end, end / ckpt_bytes),
        ("loader overhead: peak - base - model", peak - base - model, (peak - base - model) / ckpt_bytes),
    ]
    print(f"{'':<40} {'GiB':>8} {'x checkpoint':>13}")
    for name, b, ratio in rows:
        print(f"{name:<40} {b / GiB:>8.3f} {ratio:>13.2f}")
    print(f"\npeak RSS / checkpoint size = {peak / ckpt_bytes:.2f}x (the loaded model alone is "
          f"{model / ckpt_bytes:.2f}x); peak - baseline = {(peak - base) / ckpt_bytes:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
