"""The Ray Tune adapter: the only module that runs Ray (``ganrf.sweep.cluster`` borrows only Ray's
launcher-config checks).

:func:`trainable` rebuilds the :class:`~ganrf.sweep.trial.Trial` that Tune carries as a flat dict,
calls :func:`ganrf.training.loop.train`, and reports its metrics with a checkpoint every evaluation
period; a restarted or restored trial resumes from ``tune.get_checkpoint()``. The trial folder
gets ``config.json``, ``design.json`` and ``meta.json`` (:mod:`ganrf.runs`), sample grids and ERF
maps. :func:`run_sweep` builds the ``Tuner`` and runs it; :func:`resume_sweep` restores an
interrupted one. Storage paths may be local folders or URIs (``s3://``, ``gs://``, ``file://``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Ray 2.60's core gRPC servers (GCS, raylet, workers) listen on every interface whatever the node
# IP, so token authentication is on unless the user chose otherwise: they refuse any client
# without the cluster's token (a local ray.init makes one, in ~/.ray/auth_token). Ray reads the
# mode when it is imported, hence here.
os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402
from ray import tune  # noqa: E402

from ganrf import runs  # noqa: E402
from ganrf.config import TrainConfig  # noqa: E402
from ganrf.metrics.spec import progress_columns  # noqa: E402
from ganrf.sweep.progress import PublishCallback, publish_every_s, reporter  # noqa: E402
from ganrf.sweep.trial import Trial, pack_name  # noqa: E402
from ganrf.training.malloc import WORKER_ENV  # noqa: E402

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
        if len(members) == 1:
            tune.report({**metrics[0], "node/id": node_id}, checkpoint=ckpt)  # type: ignore[dict-item]
        else:
            tune.report(pack_summary(metrics, node_id), checkpoint=ckpt)
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
    storage = tune.get_context().get_storage()
    storage.storage_filesystem.create_dir(storage.trial_fs_path, recursive=True)
    with storage.storage_filesystem.open_output_stream(f"{storage.trial_fs_path}/{name}") as f:
        f.write(text.encode())


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


def resources_for(
    packs: list[list[Trial]], *, cpus_per_trial: int | None, gpus_per_trial: float | None
) -> dict[str, float]:
    """Per-trial resources. GPU trials take a GPU share sized to the largest pack
    (:func:`ganrf.sweep.resources.gpu_fraction`). CPU trials take every core of a node by default
    (``cpus_per_trial`` None), so they run one after another and the last one is not left
    alone on one core; their thread count is fixed, so a trial reruns exactly."""
    n_gpus = ray.cluster_resources().get("GPU", 0)
    if n_gpus == 0 and gpus_per_trial:
        log.warning(
            "--gpus-per-trial %g: the Ray cluster has no GPU, so the trials run on CPUs",
            gpus_per_trial,
        )
    if n_gpus == 0 or gpus_per_trial == 0:
        return {"cpu": cpus_per_trial or node_cpus()}
    if gpus_per_trial is None:
        from ganrf.sweep.resources import gpu_fraction, gpu_memory_bytes

        gpus_per_trial = max(gpu_fraction(p, gpu_memory_bytes()) for p in packs)
    return {"cpu": cpus_per_trial or 1, "gpu": gpus_per_trial}


def node_cpus() -> int:
    """The CPUs of the smallest live node (every trial must fit on any node)."""
    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    return max(1, int(min(cpus))) if cpus else 1


def cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def _trial_name(trial) -> str:
    """Tune's name for a trial, and its folder: the pack's name, then Tune's id."""
    flats = trial.config.get(runs.TRIAL_KEY) or []
    if len(flats) == 1:
        return f"{flats[0].get(runs.NAME_KEY, 'trial')}-{trial.trial_id}"
    return f"{pack_name([Trial.from_flat(f) for f in flats])}-{trial.trial_id}"


def init_ray(address: str | None, dashboard: bool, num_cpus: int | None = None) -> None:
    """Join ``address`` or start an embedded Ray whose dashboard, if on, is bound to loopback."""
    if ray.is_initialized():
        return
    if address:  # a cluster's workers run as its nodes were started (cluster/gpu.yaml)
        join_ray(address)
        return
    # The dashboard, when on at all, is bound to loopback; the core services need the token
    # (RAY_AUTH_MODE above).
    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            logging_level="ERROR",
            # Trials' CPU steps keep freed memory in their heap (ganrf.training.malloc): set in each
            # worker's environment, before its threads make arenas of their own.
            runtime_env={"env_vars": dict(WORKER_ENV)},
        )
    except Exception as e:
        if dashboard and "missing packages" in str(e):
            raise RuntimeError(
                "--dashboard needs Ray's dashboard packages: pip install 'gan-rf[cluster]' "
                "(or 'ray[default]')"
            ) from None
        raise


class RayJoinError(RuntimeError):
    """The sweep could not join the Ray cluster at ``--address``: one sentence saying why."""


GENERATE_TOKEN = "ray get-auth-token --generate"


def join_ray(address: str) -> None:
    """Join the running Ray cluster at ``address``, or fail in one sentence.

    Token authentication is on (``RAY_AUTH_MODE=token``, above), and a joining driver needs the
    cluster's token; only a *local* ``ray.init`` makes one. A machine that never started Ray has
    none, and neither does a cluster started by hand there (``ray start --head`` refuses to start
    without it, and Ray's test clusters die at once): the fix in both cases is Ray's own
    ``ray get-auth-token --generate`` before ``ray start`` (or the cluster's token copied to
    ``~/.ray/auth_token``).

    Raises:
        RayJoinError: no token here, the cluster refused this one, or no cluster at ``address``.
    """
    from ray.exceptions import AuthenticationError

    try:
        ray.init(address=address, logging_level="ERROR")
    except AuthenticationError as e:
        # Ray's own sentence says which case it is (no token found, or the wrong one).
        first = str(e).split(". ")[0].rstrip(".")
        raise RayJoinError(
            f"cannot join the Ray cluster at {address}: {first}; put the cluster's token in "
            f"~/.ray/auth_token (on its head, `ray get-auth-token` prints it), or on a machine "
            f"of your own run `{GENERATE_TOKEN}` before `RAY_AUTH_MODE=token ray start --head`"
        ) from None
    except ConnectionError as e:
        # Ray: "Could not find any running Ray instance. Please specify the one to connect to
        # by setting `--address` ..." for auto, a timeout for an address nothing listens on.
        reason = str(e).split(". ")[0].rstrip(".")
        raise RayJoinError(
            f"cannot join a Ray cluster at {address} ({reason}); start one first "
            f"(`{GENERATE_TOKEN}`, then `RAY_AUTH_MODE=token ray start --head`), or drop "
            f"--address to run on this machine alone"
        ) from None


def experiment_exists(path: str) -> bool:
    return tune.Tuner.can_restore(path)


def run_sweep(
    *,
    packs: list[list[Trial]],
    storage_path: str,
    name: str,
    max_concurrent: int | None,
    cpus_per_trial: int | None,
    gpus_per_trial: float | None,
    max_failures: int,
    flags: dict[str, Any] | None = None,
    verbose: int = 1,
    publish: Any = None,
) -> tune.ResultGrid:
    """Run the sweep: one Tune trial per pack of :class:`Trial` values (a pack of one each
    unless the sweep packs them).

    ``flags`` (the command-line flags that define the sweep) are kept in ``sweep.json`` beside
    the resources, so ``--resume`` can tell the same command from a different one. ``publish``
    (``exp_path -> ...``, from the sweep script) refreshes results.csv and the page while it
    runs (:class:`PublishCallback`)."""
    # Tune's newer console output ignores progress reporters and prints the grid point as one
    # truncated dict; the classic reporter shows the columns chosen above.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    path = f"{storage_path.rstrip('/')}/{name}"
    resources = resources_for(packs, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    fn = tune.with_resources(trainable, resources)
    trials = sum(len(p) for p in packs)
    sweep = {"resources": resources, "trials": trials, "packs": len(packs), "flags": flags}
    runs.write_text(f"{path}/{runs.SWEEP_FILE}", json.dumps(sweep, indent=2))
    tuner = tune.Tuner(
        fn,
        param_space={runs.TRIAL_KEY: tune.grid_search([[t.to_flat() for t in p] for p in packs])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
            # Reuse worker processes between trials: threads and the GPU share are set by each
            # trial, and small MNIST trials would otherwise pay a process start each.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            sync_config=tune.SyncConfig(sync_artifacts=True),
            progress_reporter=reporter(path),
            verbose=verbose,
            callbacks=_callbacks(publish, path),
        ),
    )
    return tuner.fit()


def _callbacks(publish: Any, path: str) -> list[tune.Callback]:
    return [PublishCallback(publish, path, publish_every_s())] if publish else []


def read_sweep(path: str) -> dict[str, Any]:
    """The experiment's ``sweep.json``: the resources, trial count and defining flags
    (``"flags"``, None for a sweep from before they were recorded) it started with.

    Raises:
        ResumeError: the file is missing or not a JSON object with the resources.
    """
    try:
        sweep = json.loads(runs.read_text(f"{path}/{runs.SWEEP_FILE}"))
        sweep["resources"]  # noqa: B018 -- must be there
    except (OSError, ValueError, KeyError, TypeError):
        raise ResumeError(
            f"{path}/{runs.SWEEP_FILE} is missing or corrupt; it records how the sweep started: "
            "restore it, or start a new experiment under another --name"
        ) from None
    sweep.setdefault("flags", None)
    return sweep


# Where the functions and callbacks that Tune pickles into an experiment's state (tuner.pkl, the
# search algorithm's state) lived before ganrf had sub-packages: a sweep started then names them
# by these paths, and resumes only if they still import.
MOVED_MODULES = {"ganrf.tune": "ganrf.sweep.tune", "ganrf.tune_progress": "ganrf.sweep.progress"}


def alias_moved_modules() -> None:
    """Make the pre-sub-package module paths of :data:`MOVED_MODULES` import again (this
    process only), so that ``Tuner.restore`` can unpickle an older sweep's state."""
    for old, new in MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def resume_sweep(path: str) -> tune.ResultGrid:
    """Continue an interrupted sweep: finished trials stay finished, unfinished and errored ones
    continue from their last checkpoint, on the resources the sweep started with."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    resources = read_sweep(path)["resources"]
    _check_state(path)
    alias_moved_modules()
    fn = tune.with_resources(trainable, resources)
    try:
        tuner = tune.Tuner.restore(path, trainable=fn, resume_unfinished=True, resume_errored=True)
    except Exception as e:  # a truncated tuner.pkl or experiment_state-*.json
        raise ResumeError(
            f"the experiment state in {path} is truncated or corrupt ({type(e).__name__}); "
            "restore it from a backup, or start a new experiment under another --name"
        ) from None
    return tuner.fit()


def _check_state(path: str) -> None:
    """Tune restores from a truncated experiment_state file by silently starting over; refuse."""
    names = runs.list_names(path)
    states = [n for n in names if n.startswith("experiment_state-") and n.endswith(".json")]
    try:
        if not states or not runs.read_bytes(f"{path}/tuner.pkl"):
            raise ValueError("missing")
        json.loads(runs.read_text(f"{path}/{states[-1]}"))
    except (OSError, ValueError, TypeError):
        bad = states[-1] if states else "tuner.pkl"
        raise ResumeError(
            f"the experiment state in {path} is truncated or corrupt ({bad}); "
            "restore it from a backup, or start a new experiment under another --name"
        ) from None


class ResumeError(RuntimeError):
    """An experiment that cannot be resumed; the message says why and what to do."""
