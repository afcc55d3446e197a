"""Orbax checkpoint I/O, and nothing else: save, restore, list and validate the steps of one checkpoints folder.

A step holds three items: `state` (the TrainState arrays), `data` (the grain iterator position) and `meta` (the
run fingerprint, the step and the resolved config as JSON). Every Orbax call of the project lives here.

What a failure means is decided here, so callers never catch a bare `Exception`:
  * `DamagedCheckpointError`: a step's files cannot be read (truncated array data, a missing or truncated
    metadata / iterator file); its one-line message names the step and the file (or array) that failed;
  * `IncompatibleCheckpointError`: the files are fine but were written by another configuration or another state
    layout (a code change): the message lists the differing fields or arrays;
  * `CheckpointSaveError`: the folder cannot be written; raised in the caller's thread, at once, naming the path.
Which step to resume, and what to do with a damaged one, is the trainer's policy (`hrm_jax/resume.py`); what
inference loads is `hrm_jax/restore.py`'s.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import re
import uuid
from typing import Any

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from hrm_jax import config as config_lib

ITEMS = ("state", "data", "meta")
DAMAGED_SUFFIX = ".damaged"


class IncompatibleCheckpointError(ValueError):
    """A checkpoint written by a run with another model / data configuration, or another state layout."""


class DamagedCheckpointError(RuntimeError):
    """A step whose files cannot be read; `step` and `path` say which."""

    def __init__(self, step: int, path: str, detail: str):
        self.step, self.path, self.detail = step, path, detail
        super().__init__(f"checkpoint step {step} is damaged: {path}: {detail}")


class CheckpointSaveError(OSError):
    """The checkpoints folder cannot be written."""


def run_fingerprint(config: ml_collections.ConfigDict, family, data_meta: dict) -> dict:
    """What must match for a checkpoint to be resumed: the family and its resolved model config, the data spec
    (tokenizer fingerprint included), the global batch. JSON-normalised, as it is stored."""
    fingerprint = {"model_family": family.name, "model": dataclasses.asdict(family.model_config),
                   "data": dict(data_meta), "global_batch_size": int(config.data.global_batch_size),
                   "ema": bool(config.optim.ema_decay)}
    return json.loads(json.dumps(fingerprint))


def diff(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """`key: checkpoint a vs this run b` for every leaf that differs, nested keys dotted."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r} vs this run {b!r}")
    return out


def abstract_with_shardings(abstract, shardings):
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


# TensorStore / Orbax status codes of unreadable files (a resource or sharding error is not damage).
DAMAGE_STATUS = re.compile(r"\b(DATA_LOSS|OUT_OF_RANGE|NOT_FOUND): ")


def _chain(e: BaseException) -> list[BaseException]:
    out = []
    while e is not None and e not in out and len(out) < 8:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def describe(e: BaseException) -> tuple[str | None, str]:
    """(the file an I/O error names, the error in one short line). TensorStore errors carry a ~60-line spec; what
    is kept is the array, the status code and the innermost cause, e.g. `array params.lm_head.kernel:
    OUT_OF_RANGE: Requested byte range [0, 3180) is not valid for value of size 1060`."""
    files, arrays, lines = [], [], []
    for err in _chain(e):
        text = re.split(r" \[tensorstore_spec=| See full TensorStore details", str(err))[0]
        files += [f for f in re.findall(r'local file "([^"]+)"', text) if not f.endswith("/")]
        arrays += re.findall(r'Error reading "([^"]+?)/[^"/]*"', text)
        arrays += [a for a in re.findall(r"'path': '([^']+?)/?'", str(err)) if not a.startswith("/")]
        lines.append((type(err).__name__, text.strip().splitlines()[0] if text.strip() else ""))
    name, text = next(((n, t) for n, t in reversed(lines) if re.match(r"[A-Z_]+: ", t)), lines[0])
    code = re.match(r"([A-Z_]+): ", text)
    detail = f"{code.group(1)}: {text.rsplit(': ', 1)[-1]}" if code else f"{name}: {text}" if text else name
    if arrays:
        detail = f"array {arrays[0].removesuffix('.value')}: {detail}"
    return (files[-1] if files else None), detail[:300]


class _QuietUnretrievedFutures(logging.Filter):
    """While a step is read: Orbax reads arrays concurrently, and when one read fails the sibling futures'
    errors (each with TensorStore's full spec) would be logged by asyncio as never retrieved. The first error is
    what `describe` reports; these copies are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()

    def __enter__(self):
        logging.getLogger("asyncio").addFilter(self)
        return self

    def __exit__(self, *exc):
        gc.collect()  # unretrieved futures report when collected: let them do it while filtered
        logging.getLogger("asyncio").removeFilter(self)


def _layout(tree) -> dict[tuple, tuple]:
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in ocp.tree.to_flat_dict(tree).items()
            if hasattr(v, "shape")}


def _probe_writable(directory: str) -> None:
    """Create and delete a file in `directory` (made if missing), so an unwritable folder fails here, in this
    thread, instead of in Orbax's background thread minutes later."""
    probe = os.path.join(directory, f".write_probe.{uuid.uuid4().hex}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise CheckpointSaveError(e.errno, f"cannot write checkpoints to {directory}: {e.strerror or e}") from e


class CheckpointManager:
    """One checkpoints folder. `read_only` managers (inference) never create, save or move anything."""

    def __init__(self, directory: str, *, keep_latest: int = 2, keep_every: int = 0, async_save: bool = True,
                 read_only: bool = False):
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        if not read_only:
            _probe_writable(self.directory)
        policies = [ocp.checkpoint_managers.LatestN(keep_latest)]
        if keep_every:
            policies.append(ocp.checkpoint_managers.EveryNSteps(keep_every))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=async_save and not read_only, create=not read_only, read_only=read_only,
            save_interval_steps=0 if read_only else 1,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies))
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    @classmethod
    def for_run(cls, workdir: str, config: ml_collections.ConfigDict) -> "CheckpointManager":
        """The training run's manager: `<workdir>/checkpoints` with the config's retention and async settings."""
        return cls(os.path.join(os.path.abspath(workdir), "checkpoints"), keep_latest=config.train.keep_latest,
                   keep_every=config.train.keep_every, async_save=config.train.async_checkpoint)

    # ----- listing ------------------------------------------------------------------------------------------------
    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    # ----- saving -------------------------------------------------------------------------------------------------
    def save(self, step: int, state, data_iter, meta: dict, force: bool = False) -> None:
        """Save `state`, the iterator position and `meta` (JSON) as `step`; an unwritable folder or an earlier
        asynchronous save's failure raises here."""
        if self.read_only:
            raise CheckpointSaveError(f"{self.directory} was opened read-only")
        _probe_writable(self.directory)
        self.manager.check_for_errors()
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iter),
            meta=ocp.args.JsonSave(meta)), force=force)

    # ----- reading and validating ---------------------------------------------------------------------------------
    def read_meta(self, step: int) -> dict:
        path = os.path.join(self.step_dir(step), "meta", "metadata")
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise DamagedCheckpointError(step, path, describe(e)[1]) from None
        if not isinstance(meta, dict):
            raise DamagedCheckpointError(step, path, f"expected a JSON object, found {type(meta).__name__}")
        return meta

    def check_fingerprint(self, step: int, fingerprint: dict) -> dict:
        """The step's metadata, after checking that it was written by a run with this `fingerprint`."""
        meta = self.read_meta(step)
        diffs = diff({k: meta.get(k) for k in fingerprint}, fingerprint)
        if diffs:
            raise IncompatibleCheckpointError(
                f"checkpoint {self.step_dir(step)} was written by another configuration:\n  " + "\n  ".join(diffs)
                + "\nUse another --workdir, or restore the original settings.")
        return meta

    def check_layout(self, step: int, target, item_keys: tuple[str, ...] | None = None) -> None:
        """The step's stored arrays have the names, shapes and dtypes of `target` (restricted to the top-level
        `item_keys` when given): a layout change raises IncompatibleCheckpointError naming the arrays."""
        path = os.path.join(self.step_dir(step), "state")
        try:
            with _QuietUnretrievedFutures():
                stored = _layout(ocp.StandardCheckpointHandler().metadata(epath.Path(path)).tree)
        except Exception as e:  # noqa: BLE001 (Orbax raises several types for missing or truncated metadata)
            file, detail = describe(e)
            raise DamagedCheckpointError(step, file or os.path.join(path, "_METADATA"), detail) from None
        wanted = _layout(ocp.tree.serialize_tree(target, keep_empty_nodes=True))
        if item_keys is not None:
            stored = {k: v for k, v in stored.items() if k[0] in item_keys}
        problems = [f"{'.'.join(map(str, k))}: missing from the checkpoint" for k in sorted(set(wanted) - set(stored))]
        problems += [f"{'.'.join(map(str, k))}: in the checkpoint, not in this model"
                     for k in sorted(set(stored) - set(wanted)) if item_keys is None]
        problems += [f"{'.'.join(map(str, k))}: checkpoint {stored[k][0]} {stored[k][1]} vs this run "
                     f"{wanted[k][0]} {wanted[k][1]}" for k in sorted(set(stored) & set(wanted))
                     if stored[k] != wanted[k]]
        if problems:
            raise IncompatibleCheckpointError(
                f"checkpoint {self.step_dir(step)} holds another state layout ({len(problems)} arrays differ):\n  "
                + "\n  ".join(problems[:20]))

    def restore(self, step: int, target, data_iter) -> Any:
        """The state of `step` placed as `target` (ShapeDtypeStructs with shardings), and `data_iter` moved to the
        saved position. Call `check_layout` first: a failure left that points at the files is damage (raised as
        DamagedCheckpointError); any other (out of memory, sharding) is raised as it is."""
        try:
            with _QuietUnretrievedFutures():
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), data=grain.checkpoint.CheckpointRestore(data_iter)))
        except Exception as e:  # noqa: BLE001 (the layout matched: a failure naming the files is damage)
            damaged = self._damaged(step, e)
            if damaged is None:
                raise
            raise damaged from None
        return restored["state"]

    def restore_arrays(self, step: int, partial: dict) -> dict:
        """Only the top-level `partial` entries of the step's state (weights for inference or `init_from`),
        straight to their target shardings; the optimiser state is never read."""
        self.check_layout(step, partial, item_keys=tuple(partial))
        try:
            with _QuietUnretrievedFutures():
                return self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
                    item=partial, partial_restore=True,  # the targets' shardings, not the saved ones (any mesh)
                    restore_args=ocp.checkpoint_utils.construct_restore_args(partial))))["state"]
        except Exception as e:  # noqa: BLE001 (the layout matched: a failure naming the files is damage)
            damaged = self._damaged(step, e)
            if damaged is None:
                raise
            raise damaged from None

    def _damaged(self, step: int, e: BaseException) -> DamagedCheckpointError | None:
        """The error for a failed restore when the failure is in the step's files, naming the file it points at:
        the file an I/O error names, else an iterator file that does not parse, else the state folder. None when
        it is not (out of memory, a sharding the mesh cannot hold, ...): that is no reason to skip the step, and
        the caller re-raises it as it is."""
        file, detail = describe(e)
        in_files = file is not None or detail.startswith("array ") or any(
            isinstance(err, (OSError, UnicodeDecodeError, json.JSONDecodeError)) or DAMAGE_STATUS.search(str(err))
            for err in _chain(e))
        if file is None:
            data = os.path.join(self.step_dir(step), "data")
            for name in sorted(os.listdir(data)) if os.path.isdir(data) else ():
                try:
                    with open(os.path.join(data, name), encoding="utf-8") as f:
                        if name.endswith(".json"):
                            json.load(f)
                except (OSError, ValueError):
                    file = os.path.join(data, name)
                    break
        if file is None and not in_files:
            return None
        return DamagedCheckpointError(step, file or os.path.join(self.step_dir(step), "state"), detail)

    # ----- moving a damaged step aside ----------------------------------------------------------------------------
    def move_aside(self, step: int) -> str:
        """Rename `<step>` to `<step>.damaged` (`.damaged.N` if taken) so later saves of that step proceed; only
        process 0 renames, every process then sees the new listing."""
        if self.read_only:
            raise CheckpointSaveError(f"{self.directory} was opened read-only")
        self.manager.wait_until_finished()
        source, dest = self.step_dir(step), self.step_dir(step) + DAMAGED_SUFFIX
        n = 1
        while os.path.exists(dest):
            dest, n = f"{self.step_dir(step)}{DAMAGED_SUFFIX}.{n}", n + 1
        if jax.process_index() == 0:
            os.rename(source, dest)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils  # noqa: PLC0415
            multihost_utils.sync_global_devices(f"checkpoint_move_aside_{step}")
        self.manager.reload()
        return dest

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def is_checkpoint_folder(path: str) -> bool:
    """`path` is a run's workdir (holding `checkpoints/`) or a checkpoints folder itself."""
    return os.path.isdir(os.path.join(path, "checkpoints")) or any(
        name.isdigit() and os.path.isdir(os.path.join(path, name)) for name in (os.listdir(path)
                                                                              if os.path.isdir(path) else ()))


def checkpoints_dir(path: str) -> str:
    path = os.path.abspath(path)
    return os.path.join(path, "checkpoints") if os.path.isdir(os.path.join(path, "checkpoints")) else path


def meta_for(config: ml_collections.ConfigDict, fingerprint: dict, step: int) -> dict:
    """What `meta` stores: the fingerprint, the step and the resolved config."""
    return dict(fingerprint, step=int(step), config=json.loads(config_lib.to_json(config)))
