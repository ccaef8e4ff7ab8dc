"""The Ray Tune adapter: the only module that runs Ray (``ganrf.cluster`` borrows only Ray's
launcher-config checks).

:func:`trainable` rebuilds the :class:`~ganrf.trial.Trial` that Tune carries as a flat dict,
calls :func:`ganrf.train.train`, and reports its metrics with a checkpoint every evaluation
period; a restarted or restored trial resumes from ``tune.get_checkpoint()``. The trial folder
gets ``config.json``, ``design.json`` and ``meta.json`` (:mod:`ganrf.runs`), sample grids and ERF
maps. :func:`run_sweep` builds the ``Tuner`` and runs it; :func:`resume_sweep` restores an
interrupted one. Storage paths may be local folders or URIs (``s3://``, ``gs://``, ``file://``).
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

from ganrf import runs  # noqa: E402
from ganrf.metrics.spec import progress_columns  # noqa: E402
from ganrf.trial import Trial  # noqa: E402

log = logging.getLogger(__name__)

TIMEOUT_EXIT = 75
FAULT_ENV = "GANRF_FAULT"
FAULT_COUNTER = ".fault-attempts"  # in a trial folder: attempts under an injected fault
CHECKPOINT_LOGGER = "ray.train._internal.storage"  # "Checkpoint successfully created" at INFO
PUBLISH_EVERY_ENV = "GANRF_PUBLISH_EVERY_S"
PUBLISH_EVERY_S = 30.0  # partial results.csv and page at most this often while a sweep runs


def trainable(config: dict[str, Any]) -> None:
    """One trial: rebuild the Trial, give it its resources, resume, train, report."""
    from ganrf.train import train

    # Ray logs "Checkpoint successfully created at ..." at INFO for every report of every trial;
    # the "ray" logger is INFO in every worker, so quieten just that module (errors still show).
    logging.getLogger(CHECKPOINT_LOGGER).setLevel(logging.WARNING)
    trial = Trial.from_flat(config[runs.TRIAL_KEY])
    cfg = trial.config
    res = tune.get_context().get_trial_resources().required_resources
    cpus, gpu = int(res.get("CPU", 1)), float(res.get("GPU", 0))
    if cfg.threads == 0:
        cfg.threads = max(1, cpus)
    if gpu > 0:
        import torch

        if not torch.cuda.is_available():
            # e.g. the fake GPUs of a simulated cluster; a real GPU node lacking CUDA says so here
            log.warning("trial was given %.3g GPU but this node has no CUDA; training on CPU", gpu)
            cfg.device = "cpu" if cfg.device == "auto" else cfg.device
        else:
            if gpu < 1:
                # Several trials share the GPU: keep this one within its share of memory.
                torch.cuda.set_per_process_memory_fraction(gpu)
            cfg.device = "cuda" if cfg.device == "auto" else cfg.device
    elif cfg.device == "auto":
        cfg.device = "cpu"  # a CPU-only trial never grabs a GPU it was not given
    out_dir = Path(tune.get_context().get_trial_dir())
    runs.write_trial_files(out_dir, meta=trial.meta)

    marker = _read_trial_file(runs.TIMEOUT_FILE)
    if marker is not None:  # an earlier attempt ran out of its time budget: end, do not rerun
        tune.report({"status": "timed_out", **json.loads(marker)})
        return
    fault = _injected_fault(trial)
    reports = 0
    node_id = ray.get_runtime_context().get_node_id()  # which machine ran each report

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        nonlocal reports
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, "node/id": node_id}, checkpoint=ckpt)
        reports += 1
        if fault and reports == fault.get("after_reports", 1):
            _fail(fault)

    watchdog = _watchdog(trial.timeout_s) if trial.timeout_s else None
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


def _injected_fault(trial: Trial) -> dict[str, Any] | None:
    """Fault injection for the reliability tests (tests/test_reliability.py), off unless the
    ``GANRF_FAULT`` environment variable holds JSON such as
    ``{"kind": "raise", "rf": 5, "after_reports": 1, "attempts": 1}``: trials of that rf raise
    (or, with ``"kind": "hang"``, hang) after that many reports, on their first ``attempts``
    attempts (counted in the trial's storage folder)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    fault = json.loads(spec)
    if "rf" in fault and trial.design.rf != fault["rf"]:
        return None
    attempt = int(_read_trial_file(FAULT_COUNTER) or 0)
    _write_trial_file(FAULT_COUNTER, str(attempt + 1))
    return fault if attempt < fault.get("attempts", 1_000_000) else None


def _fail(fault: dict[str, Any]) -> None:
    if fault["kind"] == "hang":
        while True:
            time.sleep(1)
    raise RuntimeError(f"injected fault ({FAULT_ENV}={json.dumps(fault)})")


# Training images per dataset when the config does not say (data.subset = 0): the dataset is
# held on the GPU as uint8 up to data.device_max_gb.
TRAIN_IMAGES = {"mnist": 60_000}


def model_footprint(trial: Trial) -> tuple[int, int]:
    """(parameters of G and D, activations per image of one G and two D forwards), counted on
    torch's meta device from the models the trial builds: right for any generator and size."""
    import torch

    from ganrf.models import build_discriminator, generator_for

    cfg = trial.config
    with torch.device("meta"):
        g = generator_for(cfg)
        d = build_discriminator(trial.design)
    acts = {"g": 0, "d": 0}

    def counter(key: str):
        def hook(_mod, _inp, out) -> None:
            if isinstance(out, torch.Tensor):
                acts[key] += out[0].numel()

        return hook

    leaves = [
        (k, m) for k, net in (("g", g), ("d", d)) for m in net.modules() if not list(m.children())
    ]
    handles = [m.register_forward_hook(counter(k)) for k, m in leaves]
    try:
        with torch.no_grad():
            d(g(torch.empty(2, cfg.g.noise_dim, device="meta")))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for net in (g, d) for p in net.parameters())
    return params, acts["g"] + 2 * acts["d"]  # D sees a real and a fake batch


def gpu_fraction(trial: Trial, gpu_memory_bytes: float) -> float:
    """A GPU share sized to the trial: a rough upper bound of its memory over the card's, rounded
    up to 1/16 and at least 1/8 (so at most eight trials share one GPU)."""
    cfg = trial.config
    params, acts = model_footprint(trial)
    act_bytes = 4 * cfg.schedule.batch_size * acts * 2  # fp32 bound, kept for backward
    param_bytes = 16 * params  # weights, grads, two Adam moments
    image_bytes = cfg.data.channels * cfg.data.image_size**2
    if cfg.data.dataset == "synthetic":
        n_images = cfg.data.synthetic_size
    else:
        n_images = cfg.data.subset or TRAIN_IMAGES.get(cfg.data.dataset, math.inf)
    data_bytes = min(n_images * image_bytes, cfg.data.device_max_gb * 1e9)
    need = (act_bytes + param_bytes + data_bytes) * 1.5 + 500e6  # + CUDA context
    return min(1.0, max(1 / 8, math.ceil(16 * need / gpu_memory_bytes) / 16))


def resources_for(
    trials: list[Trial], *, cpus_per_trial: int, gpus_per_trial: float | None
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
        gpus_per_trial = max(gpu_fraction(t, mem) for t in trials)
    return {"cpu": cpus_per_trial, "gpu": gpus_per_trial}


def _trial_name(trial) -> str:
    """Tune's name for a trial, and its folder: the design's name, then Tune's id."""
    flat = trial.config.get(runs.TRIAL_KEY) or {}
    return f"{flat.get('meta.name', 'trial')}-{trial.trial_id}"


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


class _Reporter(tune.CLIReporter):
    """Tune's progress table, with the experiment's folder (not Ray's staging folder) named as
    where the results are."""

    def __init__(self, exp_path: str, **kw: Any) -> None:
        super().__init__(**kw)
        self._exp_path = exp_path

    def _print(self, msg: str) -> None:
        lines = [
            f"Results: {self._exp_path}" if line.startswith("Result logdir:") else line
            for line in msg.splitlines()
        ]
        super()._print("\n".join(lines))


def _reporter(exp_path: str) -> tune.CLIReporter:
    # Rows are named by the trial (its design and seed); columns come from the metric registry.
    # Tune's own status column is the only "status": the trial's result (finished, diverged)
    # is in results.csv and the page.
    return _Reporter(
        exp_path,
        metric_columns={"progress/epoch": "epoch", **progress_columns()},
        parameter_columns={f"{runs.TRIAL_KEY}/meta.experiment": "experiment"},
        max_report_frequency=30,
        max_column_length=40,
    )


class PublishCallback(tune.Callback):
    """Writes results.csv and the page (``publish(exp_path)``) while the sweep runs, after each
    evaluation but at most every ``every_s`` seconds, in a background thread so training never
    waits on it; the last one is awaited when the sweep ends (the sweep then publishes again)."""

    def __init__(self, publish: Any, exp_path: str, every_s: float) -> None:
        self.publish, self.exp_path, self.every_s = publish, exp_path, every_s
        self._last = -math.inf
        self._thread: threading.Thread | None = None
        self._stale = False
        self.published = 0

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the RunConfig (tuner.pkl)
        return {**self.__dict__, "_thread": None}

    def _run(self) -> None:
        try:
            self.publish(self.exp_path)
            self.published += 1
        except Exception as e:  # a partial page is a convenience: never end the sweep for it
            log.warning("partial results for %s not written: %s", self.exp_path, e)

    def maybe_publish(self) -> bool:
        now = time.monotonic()
        busy = self._thread is not None and self._thread.is_alive()
        if busy or now - self._last < self.every_s:
            return False
        self._last = now
        self._thread = threading.Thread(target=self._run, name="ganrf-publish", daemon=True)
        self._thread.start()
        return True

    # A result marks the page stale; it is written at the end of Tune's step, once Tune's own
    # loggers have put the result in result.json, and again later if the throttle held it back.
    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._stale = True

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._stale = True

    def on_step_end(self, iteration, trials, **info) -> None:
        if self._stale and self.maybe_publish():
            self._stale = False

    def on_experiment_end(self, trials, **info) -> None:
        if self._thread is not None:
            self._thread.join()


def publish_every_s() -> float:
    """Seconds between partial publishes: ``GANRF_PUBLISH_EVERY_S``, else 30."""
    try:
        return float(os.environ.get(PUBLISH_EVERY_ENV, PUBLISH_EVERY_S))
    except ValueError:
        return PUBLISH_EVERY_S


def run_sweep(
    *,
    trials: list[Trial],
    storage_path: str,
    name: str,
    max_concurrent: int | None,
    cpus_per_trial: int,
    gpus_per_trial: float | None,
    max_failures: int,
    flags: dict[str, Any] | None = None,
    verbose: int = 1,
    publish: Any = None,
) -> tune.ResultGrid:
    """Run the sweep: one Tune trial per :class:`Trial`.

    ``flags`` (the command-line flags that define the sweep) are kept in ``sweep.json`` beside
    the resources, so ``--resume`` can tell the same command from a different one. ``publish``
    (``exp_path -> ...``, from the sweep script) refreshes results.csv and the page while it
    runs (:class:`PublishCallback`)."""
    # Tune's newer console output ignores progress reporters and prints the grid point as one
    # truncated dict; the classic reporter shows the columns chosen above.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    path = f"{storage_path.rstrip('/')}/{name}"
    resources = resources_for(trials, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    fn = tune.with_resources(trainable, resources)
    sweep = {"resources": resources, "trials": len(trials), "flags": flags}
    runs.write_text(f"{path}/{runs.SWEEP_FILE}", json.dumps(sweep, indent=2))
    tuner = tune.Tuner(
        fn,
        param_space={runs.TRIAL_KEY: tune.grid_search([t.to_flat() for t in trials])},
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
            progress_reporter=_reporter(path),
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


def resume_sweep(path: str) -> tune.ResultGrid:
    """Continue an interrupted sweep: finished trials stay finished, unfinished and errored ones
    continue from their last checkpoint, on the resources the sweep started with."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    resources = read_sweep(path)["resources"]
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
