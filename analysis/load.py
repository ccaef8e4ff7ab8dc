"""Read experiment folders into one tidy DataFrame: one row per trial x evaluation.

A trial folder (Ray Tune's layout) holds ``params.json`` (the trial's config: the base training
config and its grid point), ``result.json`` (one JSON line per report) and, when it failed,
``error.txt``. Trials that are still running, were interrupted, diverged or errored are kept,
with their status; a trial that never reported still gets one row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

# Columns every frame has, in this order, before the metrics.
ID_COLUMNS = [
    "dataset",
    "experiment_name",
    "experiment",
    "trial",
    "trial_status",
    "status",
    "seed",
    "rf",
    "decision_rf",
    "depth",
    "head",
    "norm",
    "layers",
    "channels",
    "dropout",
    "params_d",
    "loss",
    "step",
    "epoch",
]
# Columns every frame has even when no trial reported them (an experiment whose trials all
# diverged before their first evaluation still draws its page).
METRIC_COLUMNS = [
    "loss/d",
    "loss/g",
    "metric/fid",
    "metric/patch_fid",
    "metric/kid_mean",
    "metric/kid_std",
    "metric/precision",
    "metric/recall",
    "metric/density",
    "metric/coverage",
    "metric/ssim",
    "metric/classifier_score",
    "metric/class_count",
    "metric/class_kl",
    "metric/confident_share",
    "metric/success",
    "erf/size50",
    "erf/size95",
    "erf/radius50",
    "erf/radius95",
    "time/epoch_s",
    "artifact/samples",
    "artifact/erf",
    "diverged_step",
    "time_total_s",
]
TRIAL_STATUSES = ("finished", "diverged", "running", "errored", "timed_out")
TIMEOUT_FILE = "timed_out.json"  # written by ganrf.tune when a trial overruns its time budget


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: the earlier ones still count
    return rows


def _flat_config(params: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in params.items() if k != "grid" and not isinstance(v, dict)}
    flat.update(params.get("grid", {}))
    return flat


def _trial_status(results: list[dict[str, Any]], trial_dir: Path) -> str:
    """The trial's own last word wins: Ray keeps error.txt after a retry that then finished."""
    last = results[-1].get("status") if results else None
    if last in ("finished", "diverged", "timed_out"):
        return last
    if (trial_dir / TIMEOUT_FILE).exists():
        return "timed_out"
    if (trial_dir / "error.txt").exists() or (trial_dir / "error.pkl").exists():
        return "errored"
    return "running"  # still running, or interrupted: --resume continues it


def load_trial(trial_dir: Path, experiment_name: str) -> list[dict[str, Any]]:
    params_file = trial_dir / "params.json"
    try:
        params = json.loads(params_file.read_text())
    except (OSError, json.JSONDecodeError):
        params = {}
    cfg = _flat_config(params)
    results = _read_jsonl(trial_dir / "result.json")
    status = _trial_status(results, trial_dir)
    common = {
        "dataset": cfg.get("data.dataset", "mnist"),
        "experiment_name": experiment_name,
        "experiment": cfg.get("meta.experiment"),
        "trial": trial_dir.name,
        "trial_dir": str(trial_dir),
        "trial_status": status,
        "seed": cfg.get("seed"),
        "rf": cfg.get("meta.rf"),
        "decision_rf": cfg.get("meta.decision_rf"),
        "depth": cfg.get("meta.depth"),
        "head": cfg.get("d.head"),
        "norm": cfg.get("d.norm"),
        "layers": cfg.get("d.layers"),
        "channels": cfg.get("d.channels"),
        "dropout": cfg.get("d.dropout"),
        "params_d": cfg.get("meta.params_d"),
        "loss": cfg.get("loss.kind", "ns"),
        "config": json.dumps(cfg, sort_keys=True),
    }
    if not results:
        return [common | {"status": status}]
    rows = []
    for r in results:
        row = dict(common)
        row.update({k: v for k, v in r.items() if "/" in k or k in ("status", "diverged_step")})
        row["step"] = r.get("progress/step")
        row["epoch"] = r.get("progress/epoch")
        row["time_total_s"] = r.get("time_total_s")
        rows.append(row)
    if status in ("errored", "timed_out"):
        rows[-1]["status"] = status
    return rows


def experiment_dirs(path: str | Path) -> list[Path]:
    """``path`` itself when it is an experiment, else the experiments inside it."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is not a folder; give an experiment folder (e.g. runs/NAME)"
        )
    if any(path.glob("*/params.json")):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*/params.json")))
    if not found:
        raise FileNotFoundError(
            f"no trials (*/params.json) under {path}; is it an experiment folder?"
        )
    return found


def load_experiment(*paths: str | Path) -> pd.DataFrame:
    """One tidy frame over every trial x evaluation of the experiments at ``paths`` (local
    folders, or object-store URIs, fetched to a temporary folder first)."""
    import tempfile

    rows: list[dict[str, Any]] = []
    tmp = None
    for path in paths:
        if is_uri(path):
            tmp = tmp or tempfile.mkdtemp(prefix="ganrf-fetch-")
            path = fetch_experiment(str(path), tmp)
        for exp in experiment_dirs(path):
            for trial in sorted(p for p in exp.iterdir() if (p / "params.json").exists()):
                rows += load_trial(trial, exp.name)
    frame = pd.DataFrame(rows)
    for col in ID_COLUMNS + METRIC_COLUMNS:
        if col not in frame.columns:
            frame[col] = pd.NA if col.startswith("artifact/") else float("nan")
    cols = [c for c in ID_COLUMNS if c in frame.columns]
    rest = sorted(c for c in frame.columns if c not in cols)
    return frame[cols + rest]


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every trial (one row per trial)."""
    order = frame.assign(_step=frame["step"].fillna(-1) if "step" in frame else -1)
    return (
        order.sort_values("_step")
        .groupby(["experiment_name", "trial"], as_index=False)
        .tail(1)
        .drop(columns="_step")
        .sort_values(["experiment_name", "rf", "depth", "head", "seed"])
        .reset_index(drop=True)
    )


def write_results_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """``results.csv``: one row per trial, design fields first, final metrics after."""
    path = Path(path)
    final = final_rows(frame).drop(columns=["config", "trial_dir"], errors="ignore")
    tmp = path.with_suffix(".csv.tmp")
    final.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------------
# Object stores: s3://, gs://, file:// (anything pyarrow.fs reads)
# --------------------------------------------------------------------------------------------

# What the analysis reads from a trial folder; checkpoints and event files stay where they are.
FETCHED = {
    "params.json",
    "result.json",
    "error.txt",
    TIMEOUT_FILE,
    "design.json",
    "meta.json",
    "config.json",
    "sweep.json",
}


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def filesystem(path: str | Path):
    """(pyarrow filesystem, path inside it) for a local folder or a URI."""
    import pyarrow.fs as pafs

    if is_uri(path):
        return pafs.FileSystem.from_uri(str(path))
    local = str(Path(path).resolve())
    return pafs.LocalFileSystem(), local


def fetch_experiment(uri: str, dest: str | Path) -> Path:
    """Copy what the analysis reads of an experiment at ``uri`` into ``dest`` (checkpoints
    excluded: a sweep's can be gigabytes); returns the local experiment folder."""
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    root = root.rstrip("/")
    out = Path(dest) / root.split("/")[-1]
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
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
            or (len(parts) == 3 and parts[1] in ("samples", "erf") and parts[-1].endswith(".png"))
        )
        if not keep or any(p.startswith("checkpoint_") for p in parts):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src:
            target.write_bytes(src.read())
    return out


def upload(local: Path, uri: str) -> None:
    """Copy one local file to ``uri`` (a folder URI; the file keeps its name)."""
    fs, root = filesystem(uri)
    with fs.open_output_stream(f"{root.rstrip('/')}/{local.name}") as dst:
        dst.write(local.read_bytes())
