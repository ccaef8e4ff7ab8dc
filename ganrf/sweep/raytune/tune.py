"""The Ray Tune adapter, the driver's side: the module that starts Ray (with the trainable it
runs, :mod:`ganrf.sweep.raytune.trainable`, and Tune's progress output,
:mod:`ganrf.sweep.raytune.progress`; ``ganrf.sweep.raytune.cluster`` borrows only Ray's
launcher-config checks).

:func:`init_ray` starts or joins Ray; :func:`run_sweep` builds the ``Tuner`` (one Tune trial per
pack, resources sized to the packs) and runs it; :func:`resume_sweep` restores an interrupted
one. The trial folder gets ``config.json``, ``design.json`` and ``meta.json``
(:mod:`ganrf.runs`), sample grids and ERF maps. Storage paths may be local folders or URIs
(``s3://``, ``gs://``, ``file://``).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

# Token authentication is on unless the user chose otherwise: ganrf/sweep/raytune/__init__.py sets
# RAY_AUTH_MODE before any module of this package imports Ray.
import ray
from ray import tune

from ganrf import runs, storage
from ganrf.sweep.flags import SweepError
from ganrf.sweep.plan import check_address
from ganrf.sweep.raytune import reaper, trackers
from ganrf.sweep.raytune.progress import PublishCallback, publish_every_s, reporter
from ganrf.sweep.raytune.trainable import trainable
from ganrf.sweep.trial import HPARAMS, Trial, pack_hyperparameter, pack_name
from ganrf.training.malloc import WORKER_ENV

log = logging.getLogger(__name__)


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
    # Ray's agents would outlive a killed driver by a minute (ganrf.sweep.raytune.reaper).
    reaper.start()
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
        check_address(address)  # Ray itself retries an address nothing listens on for minutes
    except SweepError as e:
        raise RayJoinError(str(e)) from None
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
    tracker: str | None = None,
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
    plain_worker_prefixes()
    path = f"{storage_path.rstrip('/')}/{name}"
    resources = resources_for(packs, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    fn = tune.with_resources(trainable, resources)
    trials = sum(len(p) for p in packs)
    sweep = {
        "resources": resources,
        "trials": trials,
        "packs": len(packs),
        "flags": flags,
        "script": sweep_script(),
        "started": time.time(),  # ganrf ls's "started" (the file's mtime would be its last write)
    }
    storage.write_text(f"{path}/{runs.SWEEP_FILE}", json.dumps(sweep, indent=2))
    tuner = tune.Tuner(
        fn,
        param_space=param_space(packs),
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
            callbacks=_callbacks(publish, path) + trackers.callbacks(tracker, name),
        ),
    )
    stop_on_sigterm()
    return tuner.fit()


def plain_worker_prefixes() -> None:
    """Ray prints each line a worker writes behind a ``(Actor pid=...)`` prefix coloured with
    ANSI codes, also into a log file, where they are noise: off unless stderr is a terminal (or
    the user set ``RAY_COLOR_PREFIX``). Ray's driver reads the variable as it prints."""
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")


def sweep_script(argv0: str | None = None) -> str:
    """The command that started this sweep, as its resume hint will write it: ``sweeps/X.py``
    for a sweep script run from anywhere, else the program's path as given."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    p = Path(argv0)
    if p.parent.name == "sweeps" and p.suffix == ".py":
        return f"sweeps/{p.name}"
    return argv0


def stop_on_sigterm() -> None:
    """End the sweep on SIGTERM (``kill``, a batch system's time limit, ``systemctl stop``) as
    on Ctrl-C: Tune stops its trials, saves the experiment's state for ``--resume`` and Ray shuts
    down its processes. Without this, Ray's own handler dumped native stack traces and left its
    agents running."""

    def as_ctrl_c(signum: int, frame: Any) -> None:
        log.warning("SIGTERM: stopping the sweep as on Ctrl-C (continue it with --resume)")
        os.kill(os.getpid(), signal.SIGINT)  # Tune's own handler, set inside fit()

    signal.signal(signal.SIGTERM, as_ctrl_c)


def param_space(packs: list[list[Trial]]) -> dict[str, Any]:
    """Tune's search space: one grid point per pack (its members' flat values under
    :data:`ganrf.runs.TRIAL_KEY`, which the trainable trains), and beside it each named
    hyper-parameter (:data:`ganrf.sweep.trial.HPARAMS`), resolved from the grid point, so Tune's
    config, every tracker and ``ExperimentAnalysis.dataframe()`` show ``rf``, ``depth``, ``head``...
    as values of their own."""
    space: dict[str, Any] = {
        runs.TRIAL_KEY: tune.grid_search([[t.to_flat() for t in p] for p in packs])
    }
    for key in HPARAMS:
        space[key] = tune.sample_from(functools.partial(_resolved, key))
    return space


def _resolved(key: str, config: dict[str, Any]) -> Any:
    return pack_hyperparameter(key, config[runs.TRIAL_KEY])


def _callbacks(publish: Any, path: str) -> list[tune.Callback]:
    return [PublishCallback(publish, path, publish_every_s())] if publish else []


def read_sweep(path: str) -> dict[str, Any]:
    """The experiment's ``sweep.json``: the resources, trial count and defining flags
    (``"flags"``, None for a sweep from before they were recorded) it started with.

    Raises:
        ResumeError: the file is missing or not a JSON object with the resources.
    """
    try:
        sweep = runs.read_sweep(path)
        sweep["resources"]  # noqa: B018 -- must be there
    except (OSError, ValueError, KeyError, TypeError):
        raise ResumeError(
            f"{path}/{runs.SWEEP_FILE} is missing or corrupt; it records how the sweep started: "
            "restore it, or start a new experiment under another --name"
        ) from None
    sweep.setdefault("flags", None)
    return sweep


# Where the functions and callbacks that Tune pickles into an experiment's state (tuner.pkl, the
# search algorithm's state) lived before: a sweep started then names them by these paths, and
# resumes only if they still import. Before ganrf had sub-packages, ganrf.tune (ganrf.tune.trainable
# too: that module imported the trainable, as this one does); before the Ray adapter had a
# sub-package of its own, ganrf.sweep.tune (_trial_name, _resolved), ganrf.sweep.progress
# (PublishCallback, the reporter), ganrf.sweep.tensorboard (--tracker tensorboard's callback).
MOVED_MODULES = {
    "ganrf.tune": "ganrf.sweep.raytune.tune",
    "ganrf.tune_progress": "ganrf.sweep.raytune.progress",
    "ganrf.sweep.tune": "ganrf.sweep.raytune.tune",
    "ganrf.sweep.trainable": "ganrf.sweep.raytune.trainable",
    "ganrf.sweep.progress": "ganrf.sweep.raytune.progress",
    "ganrf.sweep.tensorboard": "ganrf.sweep.raytune.tensorboard",
    "ganrf.sweep.trackers": "ganrf.sweep.raytune.trackers",
}


def alias_moved_modules() -> None:
    """Make the older module paths of :data:`MOVED_MODULES` import again (this process only), so
    that ``Tuner.restore`` can unpickle an older sweep's state."""
    for old, new in MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def resume_sweep(path: str) -> tune.ResultGrid:
    """Continue an interrupted sweep: finished trials stay finished, unfinished and errored ones
    continue from their last checkpoint, on the resources the sweep started with."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    plain_worker_prefixes()
    sweep = read_sweep(path)
    resources = sweep["resources"]
    trackers.restore(sweep["flags"])
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
    stop_on_sigterm()
    return tuner.fit()


def _check_state(path: str) -> None:
    """Tune restores from a truncated experiment_state file by silently starting over; refuse."""
    names = storage.list_names(path)
    states = [n for n in names if n.startswith("experiment_state-") and n.endswith(".json")]
    try:
        if not states or not storage.read_bytes(f"{path}/tuner.pkl"):
            raise ValueError("missing")
        json.loads(storage.read_text(f"{path}/{states[-1]}"))
    except (OSError, ValueError, TypeError):
        bad = states[-1] if states else "tuner.pkl"
        raise ResumeError(
            f"the experiment state in {path} is truncated or corrupt ({bad}); "
            "restore it from a backup, or start a new experiment under another --name"
        ) from None


class ResumeError(RuntimeError):
    """An experiment that cannot be resumed; the message says why and what to do."""
