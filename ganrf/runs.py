"""Experiment and trial folders, wherever they are kept: the one place that knows their files.

Torch-free, so the sweep driver, the Tune adapter and the analysis (``analysis/``) all use it.
Storage is a local folder or a URI (``s3://``, ``gs://``, ``file://``), read and written through
pyarrow filesystems as Ray Tune does.

An experiment folder (Tune's layout) holds ``sweep.json`` (what the sweep started with), Tune's
own state, and one folder per trial. A trial folder holds:

* ``params.json`` (Tune): ``{"trial": FLAT}``, the trial value as :meth:`ganrf.sweep.trial.Trial.to_flat`
  gives it — written by Tune when the trial is created, so it exists even for a trial that never
  started;
* ``config.json``, ``design.json``, ``meta.json`` (the trial itself): the resolved training config,
  the discriminator and generator as data (rf, decision rf, layer table), and the sweep's meta;
* ``result.json`` (Tune): one JSON line per report; ``error.txt`` (Tune) when an attempt raised;
  ``timed_out.json`` when the trial ran out of its time budget;
* ``samples/stepNNNNNNNN.png``, ``erf/conv-stepNNNNNNNN.png`` and
  ``erf/decision-stepNNNNNNNN.png``: artifacts of each evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganrf.storage import filesystem, read_text, write_text, write_whole

SWEEP_FILE = "sweep.json"  # experiment folder: the flags and resources the sweep started with
PARAMS_FILE = "params.json"  # trial folder, Tune's: {"trial": flat trial value}
CONFIG_FILE = "config.json"  # trial folder: the resolved TrainConfig, flat
DESIGN_FILE = "design.json"  # trial folder: {"discriminator": ..., "generator": ...}
META_FILE = "meta.json"  # trial folder: the sweep's meta keys (experiment, time budget)
RESULT_FILE = "result.json"  # trial folder, Tune's: one JSON line per report (flushed late)
REPORTS_FILE = "reports.jsonl"  # trial folder: our line per report, in storage at once
ERROR_FILE = "error.txt"  # trial folder, Tune's: the traceback of a failed attempt
TIMEOUT_FILE = "timed_out.json"  # trial folder: the trial overran its time budget
ERROR_PICKLE = "error.pkl"  # trial folder, Tune's: the exception of a failed attempt
TRIAL_KEY = "trial"  # Tune's config: the flat trial values a Tune trial trains
META_PREFIX = "meta."
EXPERIMENT_KEY = f"{META_PREFIX}experiment"  # a flat trial value's experiments, comma-separated
NAME_KEY = f"{META_PREFIX}name"  # a flat trial value's name: its folder (a packed member's)
DESIGN_KEY = "design"  # a flat trial value's solved discriminator (DiscriminatorDesign.to_value)

TRIAL_STATUSES = ("finished", "diverged", "running", "errored", "timed_out")
ARTIFACT_DIRS = ("samples", "erf")

# What the analysis reads of a trial folder; checkpoints and event files stay where they are.
FETCHED = {
    PARAMS_FILE,
    RESULT_FILE,
    REPORTS_FILE,
    ERROR_FILE,
    TIMEOUT_FILE,
    DESIGN_FILE,
    META_FILE,
    CONFIG_FILE,
    SWEEP_FILE,
}


# --------------------------------------------------------------------------------------------
# Storage: local folders and URIs
# --------------------------------------------------------------------------------------------


def fetch_experiment(uri: str, dest: str | Path) -> Path:
    """Copy what the analysis reads of an experiment at ``uri`` into ``dest`` (checkpoints
    excluded: a sweep's can be gigabytes); returns the local experiment folder."""
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    root = root.rstrip("/")
    out = Path(dest) / root.split("/")[-1]
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    if not infos:
        raise FileNotFoundError(f"nothing at {uri}; is it an experiment folder?")
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(root) + 1 :]
        parts = rel.split("/")
        keep = (
            parts[-1] in FETCHED
            or parts[0].startswith("experiment_state")
            or (len(parts) >= 3 and parts[-2] in ARTIFACT_DIRS and parts[-1].endswith(".png"))
        )
        if not keep or any(p.startswith("checkpoint_") for p in parts):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src:
            target.write_bytes(src.read())
    return out


# --------------------------------------------------------------------------------------------
# Trial folders
# --------------------------------------------------------------------------------------------


def split_meta(
    flat: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """A flat trial value -> (training-config keys, ``meta.*`` keys, the design value it
    carries: ``flat[DESIGN_KEY]``, None in a value from before the design was carried)."""
    meta = {k: v for k, v in flat.items() if k.startswith(META_PREFIX)}
    config = {k: v for k, v in flat.items() if not k.startswith(META_PREFIX) and k != DESIGN_KEY}
    return config, meta, flat.get(DESIGN_KEY)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines; a line cut short by a crash is skipped, the earlier ones still count."""
    return parse_jsonl(path.read_text(errors="replace")) if path.exists() else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass
class TrialFolder:
    """What a trial folder says, read once: its config, meta, design and reports."""

    path: Path
    config: dict[str, Any]  # flat TrainConfig keys (config.json, else Tune's params.json)
    meta: dict[str, Any]  # meta.* keys
    design: dict[str, Any] | None  # design.json, when the trial got that far
    carried: dict[str, Any] | None = None  # params.json's design value (DESIGN_KEY), if any
    results: list[dict[str, Any]] = field(default_factory=list)
    pack_dir: Path | None = None  # the Tune trial folder of a packed member

    @property
    def status(self) -> str:
        tune_dir = self.pack_dir or self.path  # a packed member's errors are its pack's
        files = {n for n in (TIMEOUT_FILE, ERROR_FILE, ERROR_PICKLE) if (tune_dir / n).exists()}
        return trial_status(self.results, files)


def trial_status(results: list[dict[str, Any]], files: set[str]) -> str:
    """A trial's status from its reports and the names of the files in its folder. The trial's
    own last word wins: Tune keeps error.txt after a retry that finished."""
    last = results[-1].get("status") if results else None
    if last in ("finished", "diverged", "timed_out"):
        return last
    if TIMEOUT_FILE in files:
        return "timed_out"
    if ERROR_FILE in files or ERROR_PICKLE in files:
        return "errored"
    return "running"  # still running, or interrupted: --resume continues it


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """JSON lines; a line cut short by a crash is skipped, the earlier ones still count."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def trial_members(params: Any) -> list[dict[str, Any]]:
    """The flat trial values of a Tune trial folder's ``params.json`` value (one, or a pack's
    members); none for a value that is not one."""
    value = (params if isinstance(params, dict) else {}).get(TRIAL_KEY) or []
    return value if isinstance(value, list) else [value]


def member_folders(tune_folder: str, params: Any) -> list[str]:
    """The trial folders of a Tune trial folder (``tune_folder``, any path text) whose
    ``params.json`` holds ``params``: itself, or for a pack each member's folder inside it,
    named by the member (:data:`NAME_KEY`)."""
    found = trial_members(params)
    if len(found) > 1:
        return [f"{tune_folder}/{m.get(NAME_KEY)}" for m in found]
    return [tune_folder]


def tune_members(path: Path) -> list[dict[str, Any]]:
    """The flat trial values a Tune trial folder trains (one, or a pack's members)."""
    return trial_members(_read_json(path / PARAMS_FILE))


def is_trial_folder(path: Path) -> bool:
    return (path / PARAMS_FILE).exists() or (path / CONFIG_FILE).exists()


def read_trial(path: Path) -> TrialFolder:
    """A trial folder; for a packed member, ``path`` is its folder inside the pack's (which may
    not exist yet: the member's config then comes from the pack's params.json)."""
    pack_dir = None
    members = tune_members(path) if (path / PARAMS_FILE).exists() else []
    if not members and (path.parent / PARAMS_FILE).exists():
        pack_dir = path.parent
        members = [m for m in tune_members(pack_dir) if m.get(NAME_KEY) == path.name]
    from_params, meta_params, carried = split_meta(members[0] if members else {})
    config = _read_json(path / CONFIG_FILE) or from_params
    meta = _read_json(path / META_FILE) or meta_params
    return TrialFolder(
        path=path,
        config=config,
        meta=meta,
        design=read_design(path),
        carried=carried,
        results=read_jsonl(path / REPORTS_FILE) or read_jsonl(path / RESULT_FILE),
        pack_dir=pack_dir,
    )


def experiment_dirs(path: str | Path) -> list[Path]:
    """``path`` itself when it is an experiment, else the experiments inside it.

    An experiment is a folder with ``sweep.json`` or with a trial folder in it. A ``checkpoint_*``
    folder is never a trial folder, though it holds a ``config.json``: early in a sweep a trial's
    checkpoint can reach storage before Tune's ``params.json`` does, and its trial folder must not
    then read as an experiment (with the checkpoint as its trial)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is not a folder; give an experiment folder (e.g. runs/NAME)"
        )

    def is_experiment(folder: Path) -> bool:
        return (folder / SWEEP_FILE).exists() or any(
            is_trial_folder(t)
            for t in folder.iterdir()
            if t.is_dir() and not t.name.startswith("checkpoint_")
        )

    if is_experiment(path):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and is_experiment(p))
    if not found:
        raise FileNotFoundError(
            f"no trial folders under {path}; is it an experiment folder (runs/NAME)?"
        )
    return found


def trial_dirs(experiment: Path) -> list[Path]:
    """Every trial's folder: a Tune trial's own, or, for a pack, each member's inside it."""
    out = []
    for p in sorted(experiment.iterdir()):
        if p.is_dir() and is_trial_folder(p):
            out += [Path(f) for f in member_folders(str(p), _read_json(p / PARAMS_FILE))]
    return out


def walk_trials(experiment: Path) -> list[TrialFolder]:
    """Every trial of the local experiment folder ``experiment``, read
    (:func:`trial_dirs`, :func:`read_trial`)."""
    return [read_trial(t) for t in trial_dirs(experiment)]


def read_design(trial: Path) -> dict[str, Any] | None:
    """A trial folder's ``design.json`` (``{"discriminator": ..., "generator": ...}``), or None
    when the trial did not get as far as writing it."""
    return _read_json(Path(trial) / DESIGN_FILE)


def read_sweep(experiment: str | Path) -> dict[str, Any]:
    """An experiment's ``sweep.json`` (local or a URI): the resources, trial count and defining
    flags its sweep started with.

    Raises:
        OSError: no such file. ValueError: not a JSON object.
    """
    sweep = json.loads(read_text(f"{str(experiment).rstrip('/')}/{SWEEP_FILE}"))
    if not isinstance(sweep, dict):
        raise ValueError(f"{SWEEP_FILE} is not a JSON object")
    return sweep


def sweep_preset(experiment: str | Path) -> str | None:
    """The preset the sweep of ``experiment`` started with, if its ``sweep.json`` says."""
    try:
        return (read_sweep(experiment).get("flags") or {}).get("preset")
    except (OSError, ValueError, AttributeError):
        return None


def write_trial_files(
    folder: Path,
    *,
    config: dict[str, Any] | None = None,
    design: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write a trial's own files (``config.json``, ``design.json``, ``meta.json``), each whole."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in ((CONFIG_FILE, config), (DESIGN_FILE, design), (META_FILE, meta)):
        if value is not None:
            write_text(folder / name, json.dumps(value, indent=2, sort_keys=True))


def append_report(fs, path: str, row: dict[str, Any], until_step: int | None = None) -> None:
    """Add ``row`` to the reports file at ``path`` on the pyarrow filesystem ``fs``; with
    ``until_step``, first drop the reports after that step (a run resumed from its checkpoint
    reports them again). ``row`` None: only drop. The file is read and written whole (a few
    lines per evaluation; object stores cannot append), through :func:`ganrf.storage.write_whole`: a kill
    mid-write leaves the reports acknowledged before it (tests/test_run_files.py kills writers
    at hundreds of random moments)."""
    try:
        with fs.open_input_stream(path) as f:
            rows = parse_jsonl(f.read().decode(errors="replace"))
    except (FileNotFoundError, OSError):
        rows = []
    if until_step is not None:
        rows = [r for r in rows if (r.get("progress/step") or 0) <= until_step]
    if row is not None:
        rows.append(row)
    write_whole(fs, path, "".join(json.dumps(r) + "\n" for r in rows).encode())


# --------------------------------------------------------------------------------------------
# Sample grids (fixed noise): what a trial's generator drew at each evaluation
# --------------------------------------------------------------------------------------------

SAMPLES_DIR = "samples"  # trial folder: samples/stepNNNNNNNN.png, one grid per evaluation
REAL_GRID = "real.png"  # samples/real.png: real images of the reference set, the same grid size


def sample_grid_file(step: int) -> str:
    """The sample grid of the evaluation at training ``step``, relative to its trial folder."""
    return f"{SAMPLES_DIR}/step{step:08d}.png"


def real_grid(trial_dir: str | Path) -> Path | None:
    """The grid of real images a trial saved beside its samples (what its samples are judged
    against, laid out as they are), or None (trials from before it was saved)."""
    path = Path(trial_dir) / SAMPLES_DIR / REAL_GRID
    return path if path.is_file() else None


def sample_grids(trial_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every sample grid a trial saved, by step: each drawn from the trial's
    fixed noise, so grids of one trial differ only by training. A packed member's grids are in
    its own folder inside the pack's. Empty when none was saved yet."""
    folder = Path(trial_dir) / SAMPLES_DIR
    out = []
    for p in folder.glob("step*.png") if folder.is_dir() else []:
        digits = p.stem[len("step") :]
        if digits.isdigit():
            out.append((int(digits), p))
    return sorted(out)


def latest_sample_grid(trial_dir: str | Path) -> tuple[int, Path] | None:
    """(step, path) of the trial's latest sample grid, or None when it saved none."""
    grids = sample_grids(trial_dir)
    return grids[-1] if grids else None
