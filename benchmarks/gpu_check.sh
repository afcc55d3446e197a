#!/usr/bin/env bash
# The first accelerator run: the train step of HRM-27M on Sudoku and HRM-Text code-30m, tokens/s and MFU (formula
# and XLA cost analysis), one table, in < 8 minutes (each run capped by `timeout`).
#
#   bash benchmarks/gpu_check.sh                      # on a GPU machine (repo root, venv with jax[cuda])
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh  # tiny shapes on the CPU, about a minute: checks the script
#
# Output: one line per run in the table; per-run JSON under ${GPU_CHECK_OUT:-/tmp/gpu_check}.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${GPU_CHECK_OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [[ "${GPU_CHECK_DRY_RUN:-0}" == "1" ]]; then
  export JAX_PLATFORMS=cpu
  RUNS=("hrm-27m-sudoku|configs/sudoku.py:tiny|--batch=8"
        "hrm-text-code-30m|configs/mbpp.py:tiny|--batch=4 --seq_len=128")
  STEPS="--steps=2 --warmup=1"; LIMIT=150
else
  RUNS=("hrm-27m-sudoku|configs/sudoku.py|--batch=768"
        "hrm-text-code-30m|configs/mbpp.py:gpu|--batch=32 --seq_len=512")
  STEPS="--steps=20 --warmup=3"; LIMIT=210
fi
$PY -c "import jax; print('devices:', jax.devices())" || exit 1
for run in "${RUNS[@]}"; do
  IFS='|' read -r name config extra <<< "$run"
  echo "== $name ($config $extra)"
  # shellcheck disable=SC2086
  rm -f "$OUT/$name.json"
  if ! timeout "$LIMIT" $PY benchmarks/train_throughput.py --config="$config" $extra $STEPS \
      --json="$OUT/$name.json" > "$OUT/$name.log" 2>&1; then
    echo "   failed or over ${LIMIT}s: see $OUT/$name.log"; tail -n 3 "$OUT/$name.log"
  fi
done
$PY - "$OUT" "${RUNS[@]}" <<'PYEOF'
import json, pathlib, sys
out, runs = pathlib.Path(sys.argv[1]), [r.split("|")[0] for r in sys.argv[2:]]
fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
print(f"\n{'run':<20} {'device':<22} {'params':>11} {'batch x seq':>12} {'compile_s':>9} {'step_ms':>9} "
      f"{'tokens/s':>11} {'MFU formula':>11} {'MFU XLA':>8}")
for name in runs:
    path = out / f"{name}.json"
    if not path.exists():
        print(f"{name:<20} (no result: see {out}/{name}.log)")
        continue
    r = json.loads(path.read_text())
    print(f"{name:<20} {r['device'][:22]:<22} {r['params']:>11,} {str(r['global_batch']) + ' x ' + str(r['seq_len']):>12} "
          f"{r['compile_s']:>9.1f} {r['step_s_median'] * 1e3:>9.2f} {r['tokens_per_s']:>11.4g} "
          f"{fmt(r['mfu'], '.3f'):>11} {fmt(r.get('mfu_xla'), '.3f'):>8}")
PYEOF
