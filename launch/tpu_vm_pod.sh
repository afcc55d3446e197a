#!/usr/bin/env bash
# TPU VM pod: the same command on every worker (--worker=all); jax.distributed auto-detects the pod.
#   TPU_NAME=my-pod ZONE=us-central2-b PROJECT=my-proj REPO_DIR=~/hrm-jax \
#     launch/tpu_vm_pod.sh --config=configs/mbpp.py --workdir=gs://bucket/runs/mbpp
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}"
: "${ZONE:?set ZONE}"
: "${PROJECT:?set PROJECT}"
REPO_DIR="${REPO_DIR:-~/hrm-jax}"
[ "$#" -gt 0 ] || { echo "usage: $0 --config=... --workdir=... [--config.x=y ...]" >&2; exit 2; }
command -v gcloud >/dev/null || { echo "gcloud is not installed" >&2; exit 2; }
args=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" --worker=all --command \
  "cd ${REPO_DIR} && python -m hrm_jax.main${args} --config.distributed.enabled=True 2>&1 | tee \$HOME/hrm-jax-\$(hostname).log"
