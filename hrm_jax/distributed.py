"""Multi-host initialisation: one function, called first in main."""

from __future__ import annotations

import os

import jax
import ml_collections
from absl import logging

_AUTO_ENV = ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def maybe_initialize(cfg: ml_collections.ConfigDict) -> None:
    """`jax.distributed.initialize` when `cfg.enabled`: explicit settings (config, then the COORDINATOR_ADDRESS /
    NUM_PROCESSES / PROCESS_ID environment) win; otherwise JAX auto-detects SLURM and TPU pods."""
    if not cfg.enabled:
        return
    address = cfg.coordinator_address or os.environ.get("COORDINATOR_ADDRESS", "")
    num = cfg.num_processes or int(os.environ.get("NUM_PROCESSES", "0"))
    pid = cfg.process_id if cfg.process_id >= 0 else int(os.environ.get("PROCESS_ID", "-1"))
    if address:
        if num <= 0 or pid < 0:
            raise ValueError("config.distributed: a coordinator address needs num_processes and process_id "
                             "(config or NUM_PROCESSES / PROCESS_ID)")
        jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid,
                                   initialization_timeout=1800)
    elif any(k in os.environ for k in _AUTO_ENV):
        jax.distributed.initialize()
    else:
        raise ValueError("config.distributed.enabled but no coordinator: set config.distributed.coordinator_address "
                         "(or COORDINATOR_ADDRESS), or run under SLURM / on a TPU pod")
    logging.info("jax.distributed: process %d of %d", jax.process_index(), jax.process_count())
