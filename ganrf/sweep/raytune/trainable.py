"""The Ray Tune trainable: one Tune trial (a pack of one or more :class:`~ganrf.sweep.trial.Trial`)
as it runs on a worker.

:func:`trainable` rebuilds the trials that Tune carries as flat dicts (their designs as values:
nothing is re-parsed), places them on the resources Tune gave, calls
:func:`ganrf.training.loop.train_pack`, and reports metrics with a checkpoint every evaluation
period; a restarted or restored trial resumes from ``tune.get_checkpoint()``. A trial that
overruns its time budget ends as ``timed_out``; ``GANRF_FAULT`` injects faults for the reliability
tests. The driver's side (``Tuner``, resources, resume) is :mod:`ganrf.sweep.raytune.tune`;
Ray's authentication mode is set by this package's ``__init__``, before either imports Ray. Tune
pickles :func:`trainable` by this module path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.result import TIMESTEPS_TOTAL

from ganrf import runs
from ganrf.config import TrainConfig
from ganrf.metrics.spec import progress_columns
from ganrf.storage import write_whole
from ganrf.sweep.trial import Trial

log = logging.getLogger(__name__)

TIMEOUT_EXIT = 75
FAULT_ENV = "GANRF_FAULT"
FAULT_COUNTER = ".fault-attempts"  # in a trial folder: attempts under an injected fault
CHECKPOINT_LOGGER = "ray.train._internal.storage"  # "Checkpoint successfully created" at INFO


def _place(cfgs: list[TrainConfig]) -> None:
    """Threads and device for this trial's configs, from the resources Tune gave it."""
    res = tune.get_context().get_trial_resources().required_resources
    cpus, gpu = int(res.get("CPU", 1)), float(res.get("GPU", 0))
    cuda = False
    if gpu > 0:
        import torch

        cuda = torch.cuda.is_available()
        if not cuda:
            # e.g. the fake GPUs of a simulated cluster; a real GPU node lacking CUDA says so here
            log.warning("trial was given %.3g GPU but this node has no CUDA; training on CPU", gpu)
        elif gpu < 1:
            # Several trials share the GPU: keep this one within its share of memory.
            torch.cuda.set_per_process_memory_fraction(gpu)
    for cfg in cfgs:
        cfg.threads = cfg.threads or max(1, cpus)
        if cfg.device == "auto":  # a CPU-only trial never grabs a GPU it was not given
            cfg.device = "cuda" if cuda else "cpu"


def trainable(config: dict[str, Any]) -> None:
    """One Tune trial: a pack of one or more Trials; resources, resume, train, report.

    A pack of one writes its files into the Tune trial's folder; a larger pack gives each member
    its own folder inside it (config.json, design.json, meta.json, reports.jsonl, samples, ERF
    maps), so every member is read back as its own trial."""
    from ganrf.training.loop import train_pack

    # Ray logs "Checkpoint successfully created at ..." at INFO for every report of every trial;
    # the "ray" logger is INFO in every worker, so quieten just that module (errors still show).
    logging.getLogger(CHECKPOINT_LOGGER).setLevel(logging.WARNING)
    members = [Trial.from_flat(flat) for flat in config[runs.TRIAL_KEY]]
    cfgs = [m.config for m in members]
    _place(cfgs)
    tune_dir = Path(tune.get_context().get_trial_dir())
    out_dirs = [tune_dir] if len(members) == 1 else [tune_dir / m.name for m in members]
    for m, out in zip(members, out_dirs):
        runs.write_trial_files(out, meta=m.meta)

    storage = tune.get_context().get_storage()
    report_files = [
        f"{storage.trial_fs_path}/{runs.REPORTS_FILE}"
        if len(members) == 1
        else f"{storage.trial_fs_path}/{m.name}/{runs.REPORTS_FILE}"
        for m in members
    ]

    def record(row: dict[str, Any], file: str, until_step: int | None = None) -> None:
        # Written to storage at once (Tune's own result.json is flushed late), so partial
        # results and a resumed trial on another node see every report.
        runs.append_report(storage.storage_filesystem, file, row, until_step)

    marker = _read_trial_file(runs.TIMEOUT_FILE)
    if marker is not None:  # an earlier attempt ran out of its time budget: end, do not rerun
        row = {"status": "timed_out", **json.loads(marker)}
        for file in report_files:
            record(row, file)
        tune.report(row)
        return
    fault = _injected_fault(members)
    reports = 0
    node_id = ray.get_runtime_context().get_node_id()  # which machine ran each report
    t_start = time.time()

    def report(metrics: list[dict[str, Any] | None], checkpoint_dir: str | None) -> None:
        nonlocal reports
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        for m, file in zip(metrics, report_files):
            if m is not None:  # a frozen (diverged) member reported its end once
                record({**m, "node/id": node_id, "time_total_s": time.time() - t_start}, file)
        row = {**metrics[0], "node/id": node_id} if len(members) == 1 else None  # type: ignore[dict-item]
        row = row or pack_summary(metrics, node_id)
        # the training step, which Tune's TensorBoard and MLflow loggers plot against (else
        # against the report count)
        if isinstance(row.get("progress/step"), int):
            row[TIMESTEPS_TOTAL] = row["progress/step"]
        tune.report(row, checkpoint=ckpt)
        reports += 1
        if fault and reports == fault.get("after_reports", 1):
            _fail(fault)

    watchdog = _watchdog(members[0].timeout_s) if members[0].timeout_s else None
    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            # A fresh start, or a restart that lost its checkpoint (a driver killed before Tune
            # recorded it): reports from an earlier attempt will come again.
            for file in report_files:
                runs.append_report(storage.storage_filesystem, file, None, 0)
            train_pack(cfgs, report, out_dirs=out_dirs)
            return
        with checkpoint.as_directory() as resume_from:
            log.info("resuming %s from %s", tune_dir.name, resume_from)
            step = load_checkpoint_step(resume_from)
            for file in report_files:  # reports after the checkpoint will come again
                runs.append_report(storage.storage_filesystem, file, None, step)
            train_pack(cfgs, report, out_dirs=out_dirs, resume_from=resume_from)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def load_checkpoint_step(folder: str) -> int:
    from ganrf.training.checkpoint import load_checkpoint

    return int(load_checkpoint(folder)["step"])


def pack_summary(metrics: list[dict[str, Any] | None], node_id: str) -> dict[str, Any]:
    """What Tune's table shows for a pack: progress, the members' mean of each progress
    column, and the pack's status (running until every member has finished or diverged)."""
    live = [m for m in metrics if m is not None]
    out: dict[str, Any] = {"node/id": node_id, "pack/members": len(metrics)}
    for key in ("progress/step", "progress/epoch"):
        out[key] = max(m[key] for m in live)
    for key in progress_columns():
        values = [m[key] for m in live if isinstance(m.get(key), (int, float))]
        if values:
            out[key] = sum(values) / len(values)
    running = any(m.get("status") == "running" for m in live)
    out["status"] = "running" if running else "finished"
    return out


def _watchdog(seconds: float) -> threading.Timer:
    """Ends a trial that overruns its budget, hung or not: Tune's stoppers only run when a trial
    reports, so a hung one would otherwise hold its resources forever. The marker, written to
    the trial's folder in storage (the local trial dir is per attempt), makes a retry end at once
    as ``timed_out`` instead of hanging again."""

    def expire() -> None:
        _write_trial_file(runs.TIMEOUT_FILE, json.dumps({"timed_out_after_s": seconds}))
        log.error("trial exceeded its %.0f s budget; ending it", seconds)
        os._exit(TIMEOUT_EXIT)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _read_trial_file(name: str) -> str | None:
    """A file in this trial's folder in storage (local or object store), or None."""
    storage = tune.get_context().get_storage()
    try:
        with storage.storage_filesystem.open_input_stream(f"{storage.trial_fs_path}/{name}") as f:
            return f.read().decode()
    except (FileNotFoundError, OSError):
        return None


def _write_trial_file(name: str, text: str) -> None:
    """Write a file into this trial's folder in storage, whole or not at all."""
    storage = tune.get_context().get_storage()
    write_whole(storage.storage_filesystem, f"{storage.trial_fs_path}/{name}", text.encode())


def _injected_fault(members: list[Trial]) -> dict[str, Any] | None:
    """Fault injection for the reliability tests (tests/test_reliability.py), off unless the
    ``GANRF_FAULT`` environment variable holds JSON such as
    ``{"kind": "raise", "rf": 5, "after_reports": 1, "attempts": 1}``: trials of that rf raise
    (or, with ``"kind": "hang"``, hang) after that many reports, on their first ``attempts``
    attempts (counted in the trial's storage folder)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    fault = json.loads(spec)
    if "rf" in fault and all(m.design.rf != fault["rf"] for m in members):
        return None
    attempt = int(_read_trial_file(FAULT_COUNTER) or 0)
    _write_trial_file(FAULT_COUNTER, str(attempt + 1))
    return fault if attempt < fault.get("attempts", 1_000_000) else None


def _fail(fault: dict[str, Any]) -> None:
    if fault["kind"] == "hang":
        while True:
            time.sleep(1)
    raise RuntimeError(f"injected fault ({FAULT_ENV}={json.dumps(fault)})")
