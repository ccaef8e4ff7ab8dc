"""The Ray Tune adapter: the only module that imports Ray.

:func:`trainable` turns Tune's config (a base training config plus one grid point) into the
typed :class:`~ganrf.config.TrainConfig`, calls :func:`ganrf.train.train`, and reports its
namespaced metrics with a checkpoint every evaluation period; a restarted or restored trial
resumes from ``tune.get_checkpoint()``. Artifacts (``config.json``, sample grids, ERF maps) go to
the trial folder. :func:`run_sweep` builds the ``Tuner`` and runs it; :func:`resume_sweep`
restores an interrupted one. Storage paths may be local folders or URIs (``s3://``, ``gs://``,
``file://``): everything here reads and writes them through pyarrow filesystems, as Tune does.
"""

from __future__ import annotations

import json
import logging
import math
import os
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

from analysis.load import filesystem
from ganrf.config import TrainConfig
from ganrf.experiments import trial_name

log = logging.getLogger(__name__)

META = "meta."
SWEEP_FILE = "sweep.json"  # in the experiment folder: what the sweep started with
TIMEOUT_FILE = "timed_out.json"  # in a trial folder: it ran out of its time budget
TIMEOUT_EXIT = 75
FAULT_ENV = "GANRF_FAULT"
FAULT_COUNTER = ".fault-attempts"  # in a trial folder: attempts under an injected fault


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tune's config -> (training keys, meta keys). Grid points arrive under ``grid``."""
    flat = {k: v for k, v in config.items() if k not in ("grid", "resources")}
    flat |= config.get("grid", {})
    meta = {k: v for k, v in flat.items() if k.startswith(META)}
    train_keys = {k: v for k, v in flat.items() if not k.startswith(META)}
    return train_keys, meta


def trainable(config: dict[str, Any]) -> None:
    """One trial: typed config, resources, resume, train, report."""
    from ganrf.train import train

    train_keys, meta = split_config(config)
    res = tune.get_context().get_trial_resources().required_resources
    cpus, gpu = int(res.get("CPU", 1)), float(res.get("GPU", 0))
    train_keys.setdefault("threads", max(1, cpus))
    if gpu > 0:
        import torch

        if not torch.cuda.is_available():
            # e.g. the fake GPUs of a simulated cluster; a real GPU node lacking CUDA says so here
            log.warning("trial was given %.3g GPU but this node has no CUDA; training on CPU", gpu)
            train_keys.setdefault("device", "cpu")
        else:
            if gpu < 1:
                # Several trials share the GPU: keep this one within its share of memory.
                torch.cuda.set_per_process_memory_fraction(gpu)
            train_keys.setdefault("device", "cuda")
    elif "device" not in train_keys:
        train_keys["device"] = "cpu"  # a CPU-only trial never grabs a GPU it was not given
    cfg = TrainConfig.from_dict(train_keys)
    out_dir = Path(tune.get_context().get_trial_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    marker = _read_trial_file(TIMEOUT_FILE)
    if marker is not None:  # an earlier attempt ran out of its time budget: end, do not rerun
        tune.report({"status": "timed_out", **json.loads(marker)})
        return
    fault = _injected_fault(meta)
    reports = 0
    node_id = ray.get_runtime_context().get_node_id()  # which machine ran each report

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        nonlocal reports
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, "node/id": node_id}, checkpoint=ckpt)
        reports += 1
        if fault and reports == fault.get("after_reports", 1):
            _fail(fault)

    budget = meta.get("meta.trial_timeout_s")
    watchdog = _watchdog(float(budget)) if budget else None
    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            train(cfg, report, out_dir=out_dir)
            return
        with checkpoint.as_directory() as resume_from:
            log.info("resuming %s from %s", out_dir.name, resume_from)
            train(cfg, report, out_dir=out_dir, resume_from=resume_from)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _watchdog(seconds: float) -> threading.Timer:
    """Ends a trial that overruns its budget, hung or not: Tune's stoppers only run when a trial
    reports, so a hung one would otherwise hold its resources forever. The marker, written to
    the trial's folder in storage (the local trial dir is per attempt), makes a retry end at once
    as ``timed_out`` instead of hanging again."""

    def expire() -> None:
        _write_trial_file(TIMEOUT_FILE, json.dumps({"timed_out_after_s": seconds}))
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


def _injected_fault(meta: dict[str, Any]) -> dict[str, Any] | None:
    """Fault injection for the reliability tests (tests/test_reliability.py), off unless the
    ``GANRF_FAULT`` environment variable holds JSON such as
    ``{"kind": "raise", "rf": 5, "after_reports": 1, "attempts": 1}``: trials of that rf raise
    (or, with ``"kind": "hang"``, hang) after that many reports, on their first ``attempts``
    attempts (counted in the trial's storage folder)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    fault = json.loads(spec)
    if "rf" in fault and meta.get("meta.rf") != fault["rf"]:
        return None
    attempt = int(_read_trial_file(FAULT_COUNTER) or 0)
    _write_trial_file(FAULT_COUNTER, str(attempt + 1))
    return fault if attempt < fault.get("attempts", 1_000_000) else None


def _fail(fault: dict[str, Any]) -> None:
    if fault["kind"] == "hang":
        while True:
            time.sleep(1)
    raise RuntimeError(f"injected fault ({FAULT_ENV}={json.dumps(fault)})")


def gpu_fraction(base: dict[str, Any], point: dict[str, Any], gpu_memory_bytes: float) -> float:
    """A GPU share sized to the model: a rough upper bound of its memory over the card's,
    rounded up to 1/16 and at least 1/8 (so at most eight trials share one GPU)."""
    cfg = TrainConfig.from_dict(split_config({**base, "grid": point})[0])
    design = cfg.design()
    batch = cfg.schedule.batch_size
    # D activations: every conv map, kept for backward, for real and fake passes, fp32 bound.
    d_acts = sum(
        la.channels * design.report.layers[i].out_size[0] ** 2 for i, la in enumerate(design.layers)
    )
    g_acts = 256 * 7 * 7 * 4 * cfg.g.width * 4  # the notes' generator, roughly, per image
    act_bytes = 4 * batch * 3 * (2 * d_acts + g_acts)
    param_bytes = 16 * (design.to_dict()["params"] + 2.5e6 * cfg.g.width)  # weights+Adam+grads
    data_bytes = 60_000 * design.in_channels * design.image_size**2
    need = (act_bytes + param_bytes + data_bytes) * 1.5 + 500e6  # + CUDA context
    return min(1.0, max(1 / 8, math.ceil(16 * need / gpu_memory_bytes) / 16))


def resources_for(
    base: dict[str, Any],
    points: list[dict[str, Any]],
    *,
    cpus_per_trial: int,
    gpus_per_trial: float | None,
) -> dict[str, float]:
    """Per-trial resources: CPU trials share the cores; GPU trials take a sized GPU fraction."""
    n_gpus = ray.cluster_resources().get("GPU", 0)
    if n_gpus == 0 or gpus_per_trial == 0:
        return {"cpu": cpus_per_trial}
    if gpus_per_trial is None:
        import torch

        mem = (
            torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else 80e9
        )
        gpus_per_trial = max(gpu_fraction(base, p, mem) for p in points)
    return {"cpu": cpus_per_trial, "gpu": gpus_per_trial}


def _trial_dirname(trial) -> str:
    grid = trial.config.get("grid")
    return f"{trial_name(grid)}-{trial.trial_id}" if grid else f"trial-{trial.trial_id}"


def init_ray(address: str | None, dashboard: bool, num_cpus: int | None = None) -> None:
    """Join ``address`` or start an embedded Ray whose dashboard, if on, is bound to loopback."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="ERROR")
        return
    # The dashboard, when on at all, is bound to loopback; the core services need the token
    # (RAY_AUTH_MODE above).
    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            logging_level="ERROR",
        )
    except Exception as e:
        if dashboard and "missing packages" in str(e):
            raise RuntimeError(
                "--dashboard needs Ray's dashboard packages: pip install 'gan-rf[cluster]' "
                "(or 'ray[default]')"
            ) from None
        raise


def experiment_exists(path: str) -> bool:
    return tune.Tuner.can_restore(path)


def run_sweep(
    *,
    base: dict[str, Any],
    points: list[dict[str, Any]],
    storage_path: str,
    name: str,
    max_concurrent: int | None,
    cpus_per_trial: int,
    gpus_per_trial: float | None,
    max_failures: int,
    verbose: int = 1,
    flags: dict[str, Any] | None = None,
) -> tune.ResultGrid:
    """Run the sweep: one trial per grid point. ``flags``, the command-line flags that define
    the sweep, are recorded in sweep.json for --resume to compare against (:func:`read_sweep`)."""
    # Tune's newer console output ignores progress reporters and prints the grid point as one
    # truncated dict; the classic reporter shows rf, depth, layers and head as columns.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    path = f"{storage_path.rstrip('/')}/{name}"
    resources = resources_for(
        base, points, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial
    )
    fn = tune.with_resources(trainable, resources)
    # What --resume needs to restore the trials on the same resources.
    sweep = {"resources": resources, "trials": len(points), "base": base, "flags": flags}
    _write_file(f"{path}/{SWEEP_FILE}", json.dumps(sweep, indent=2))
    reporter = tune.CLIReporter(
        metric_columns={
            "progress/epoch": "epoch",
            "loss/d": "loss D",
            "loss/g": "loss G",
            "metric/fid": "fid",
            "metric/success": "ok",
            "time/epoch_s": "s/epoch",
            "status": "status",
        },
        parameter_columns={
            "grid/meta.rf": "rf",
            "grid/meta.depth": "depth",
            "grid/d.layers": "layers",
            "grid/d.head": "head",
            "grid/seed": "seed",
        },
        max_report_frequency=30,
        max_column_length=24,
    )
    tuner = tune.Tuner(
        fn,
        param_space={**base, "grid": tune.grid_search(points)},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            trial_dirname_creator=_trial_dirname,
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
            progress_reporter=reporter,
            verbose=verbose,
        ),
    )
    return tuner.fit()


def read_sweep(path: str) -> dict[str, Any]:
    """The experiment's sweep.json: the resources, trial count, base config and defining flags
    (``"flags"``, None for a sweep from before they were recorded) it started with.

    Raises:
        ResumeError: the file is missing or not a JSON object.
    """
    try:
        sweep = json.loads(_read_file(f"{path}/{SWEEP_FILE}"))
        if not isinstance(sweep, dict):
            raise ValueError(SWEEP_FILE)
    except (OSError, ValueError):
        raise ResumeError(
            f"{path}/{SWEEP_FILE} is missing or corrupt; it records how the sweep started: "
            "restore it, or start a new experiment under another --name"
        ) from None
    sweep.setdefault("flags", None)
    return sweep


def resume_sweep(path: str) -> tune.ResultGrid:
    """Continue an interrupted sweep: finished trials stay finished, unfinished and errored ones
    continue from their last checkpoint, on the resources the sweep started with."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        resources = json.loads(_read_file(f"{path}/{SWEEP_FILE}"))["resources"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ResumeError(
            f"{path}/{SWEEP_FILE} is missing or corrupt; it records the resources "
            "the sweep started with: restore it, or start a new experiment under another --name"
        ) from None
    _check_state(path)
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
    import pyarrow.fs as pafs

    fs, inner = filesystem(path)
    names = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(inner)))
    states = [n for n in names if n.startswith("experiment_state-") and n.endswith(".json")]
    try:
        if not states or not _read_file(f"{path}/tuner.pkl", binary=True):
            raise ValueError("missing")
        json.loads(_read_file(f"{path}/{states[-1]}"))
    except (OSError, ValueError, TypeError):
        bad = states[-1] if states else "tuner.pkl"
        raise ResumeError(
            f"the experiment state in {path} is truncated or corrupt ({bad}); "
            "restore it from a backup, or start a new experiment under another --name"
        ) from None


def _read_file(uri: str, binary: bool = False):
    fs, inner = filesystem(uri)
    with fs.open_input_stream(inner) as f:
        data = f.read()
    return data if binary else data.decode()


def _write_file(uri: str, text: str) -> None:
    fs, inner = filesystem(uri)
    fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(inner) as f:
        f.write(text.encode())


class ResumeError(RuntimeError):
    """An experiment that cannot be resumed; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Cluster launcher configs (cluster/gpu.yaml)
# --------------------------------------------------------------------------------------------

RAY_PORTS = {6379: "GCS", 8265: "dashboard", 10001: "Ray client"}


class ClusterConfigError(ValueError):
    """A cluster YAML that Ray's launcher would reject, or that breaks a security promise."""


def check_cluster_config(path: str | Path) -> dict[str, Any]:
    """Validate a cluster launcher YAML offline, as ``ray up`` would, plus our own promises.

    Runs Ray's own ``prepare_config`` (defaults merged) and ``validate_config`` (Ray's JSON
    schema), then checks each node type's min_workers <= max_workers and
    :func:`security_problems`.

    Returns:
        The prepared config.

    Raises:
        ClusterConfigError: one sentence naming the file and what is wrong.
    """
    import copy

    import jsonschema
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ClusterConfigError(f"cannot read {path} ({e.strerror})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ClusterConfigError(f"{path} is not valid YAML{line}; fix its syntax") from None
    if not isinstance(raw, dict):
        raise ClusterConfigError(f"{path} must be a YAML mapping of cluster settings")
    try:
        config = prepare_config(copy.deepcopy(raw))
        validate_config(config)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the top level"
        raise ClusterConfigError(f"{path}: {e.message} (at {where})") from None
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ClusterConfigError(f"{path}: {e}") from None
    for name, node_type in config.get("available_node_types", {}).items():
        lo, hi = (
            node_type.get("min_workers", 0),
            node_type.get("max_workers", config["max_workers"]),
        )
        if lo > hi:
            raise ClusterConfigError(
                f"{path}: node type {name!r} has min_workers {lo} above its max_workers {hi}"
            )
    problems = security_problems(raw)
    if problems:
        raise ClusterConfigError(f"{path}: {problems[0]}")
    return config


def security_problems(raw: dict[str, Any]) -> list[str]:
    """What in a cluster YAML breaks the promises: SSH the only way in, Ray's ports closed to the
    world, the dashboard on loopback, token authentication on every node."""
    problems = []
    group = raw.get("provider", {}).get("security_group", {})
    perms = group.get("IpPermissions")
    if not perms:
        problems.append(
            "provider.security_group.IpPermissions must allow SSH (22) and nothing else"
        )
    for perm in perms or []:
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if (lo, hi) != (22, 22):
            exposed = [
                f"{p} ({n})" for p, n in RAY_PORTS.items() if lo is None or lo <= p <= (hi or lo)
            ]
            what = f"; it exposes {', '.join(exposed)}" if exposed else ""
            problems.append(
                f"security group opens ports {lo}-{hi}; only SSH (22) may come in{what}"
            )
    starts = raw.get("head_start_ray_commands", []) + raw.get("worker_start_ray_commands", [])
    ray_starts = [c for c in starts if "ray start" in c]
    if not ray_starts:
        problems.append("no 'ray start' command found in head/worker_start_ray_commands")
    for cmd in ray_starts:
        if "RAY_AUTH_MODE=token" not in cmd:
            problems.append(f"'{cmd.strip()[:60]}...' starts Ray without RAY_AUTH_MODE=token")
        if (
            "--head" in cmd
            and "--dashboard-host=127.0.0.1" not in cmd
            and "--include-dashboard=false" not in cmd
        ):
            problems.append("the head must start the dashboard with --dashboard-host=127.0.0.1")
    return problems
