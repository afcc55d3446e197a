#!/usr/bin/env bash
# Plain multi-node GPU (no scheduler): run this once on every node with the same COORDINATOR_ADDRESS and
# NUM_PROCESSES, and its own PROCESS_ID (0 on the coordinator node).
#   COORDINATOR_ADDRESS=10.0.0.1:1234 NUM_PROCESSES=2 PROCESS_ID=0 launch/multinode_gpu.sh --config=... --workdir=...
set -euo pipefail
: "${COORDINATOR_ADDRESS:?set COORDINATOR_ADDRESS (host:port of process 0)}"
: "${NUM_PROCESSES:?set NUM_PROCESSES (one per node)}"
: "${PROCESS_ID:?set PROCESS_ID (0..NUM_PROCESSES-1)}"
[ "$#" -gt 0 ] || { echo "usage: $0 --config=... --workdir=... [--config.x=y ...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
exec python -m hrm_jax.main "$@" --config.distributed.enabled=True \
  --config.distributed.coordinator_address="${COORDINATOR_ADDRESS}" \
  --config.distributed.num_processes="${NUM_PROCESSES}" --config.distributed.process_id="${PROCESS_ID}"
