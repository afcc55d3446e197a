#!/usr/bin/env bash
# N processes on this machine, each with its own fake CPU devices (or its share of local GPUs), joined through
# jax.distributed on 127.0.0.1 — the multi-host code path on one box.
#   NUM_PROCESSES=2 DEVICES_PER_PROCESS=4 launch/local_multiprocess.sh --config=configs/synthetic.py:tiny --workdir=/tmp/run
set -euo pipefail
: "${NUM_PROCESSES:?set NUM_PROCESSES (e.g. 2)}"
DEVICES_PER_PROCESS="${DEVICES_PER_PROCESS:-4}"
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
[ "$#" -gt 0 ] || { echo "usage: NUM_PROCESSES=N $0 --config=... --workdir=... [--config.x=y ...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS}" \
    python -m hrm_jax.main "$@" --config.distributed.enabled=True \
      --config.distributed.coordinator_address="127.0.0.1:${PORT}" \
      --config.distributed.num_processes="${NUM_PROCESSES}" --config.distributed.process_id="${i}" \
      > >(sed "s/^/[p${i}] /") 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit "$status"
