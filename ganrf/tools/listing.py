"""``ganrf ls [STORAGE]``: the experiments in a storage folder (local, ``file://``, ``s3://``,
``gs://``), each with its preset, trial counts by status, start time and page.

Torch-free and Ray-free: it reads ``sweep.json`` and each trial folder's ``result.json`` and
marker files through :mod:`ganrf.runs`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from ganrf import runs
from ganrf.storage import filesystem, reaching, storage_root

PAGE_FILE = "report.html"  # what analysis.publish writes beside the trials


@dataclass
class Experiment:
    name: str
    path: str  # storage path of the experiment folder
    preset: str | None
    started: float | None  # when the sweep started (sweep.json; seconds since the epoch)
    script: str | None = None  # the sweep script that started it (sweep.json)
    counts: Counter = field(default_factory=Counter)  # trial status -> trials
    page: str | None = None
    planned: int = 0  # sweep.json's trial count (0: not recorded)

    @property
    def trials(self) -> int:
        return max(self.planned, sum(self.counts.values()))

    @property
    def not_started(self) -> int:
        """Trials of the sweep with no folder yet: a killed sweep's never started."""
        return self.trials - sum(self.counts.values())


def _join(storage: str, *parts: str) -> str:
    return "/".join([storage.rstrip("/"), *parts])


def list_experiments(storage: str) -> list[Experiment]:
    """Every experiment directly inside ``storage``, in order of start (oldest first).

    Raises:
        FileNotFoundError: ``storage`` is not a folder.
        StorageError: ``storage`` is a URI that cannot be reached.
    """
    with reaching(storage):
        return _list_experiments(storage)


def _list_experiments(storage: str) -> list[Experiment]:
    import pyarrow.fs as pafs

    storage = storage_root(storage)
    fs, root = filesystem(storage)
    root = root.rstrip("/")
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"{storage} is not a folder of experiments")
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(root)):
        if entry.type == pafs.FileType.Directory:
            exp = _experiment(fs, entry.path, _join(storage, entry.base_name))
            if exp is not None:
                found.append(exp)
    return sorted(found, key=lambda e: (e.started or 0, e.name))


def _experiment(fs, inner: str, path: str) -> Experiment | None:
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    files: dict[str, set[str]] = {}  # trial folder -> names of its files
    top: dict[str, float] = {}  # the experiment folder's own files -> mtime
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        parts = info.path[len(inner) + 1 :].split("/")
        if len(parts) == 1:
            top[parts[0]] = info.mtime.timestamp() if info.mtime else 0.0
        elif len(parts) in (2, 3):  # a trial's files, or a packed member's (pack/member/file)
            files.setdefault("/".join(parts[:-1]), set()).add(parts[-1])
    trials = {
        t: names
        for t, names in files.items()
        if "/" not in t and {runs.PARAMS_FILE, runs.CONFIG_FILE} & names
    }
    for t in [t for t, names in trials.items() if runs.PARAMS_FILE in names]:
        try:
            with fs.open_input_stream(f"{inner}/{t}/{runs.PARAMS_FILE}") as f:
                params = json.loads(f.read())
        except (OSError, ValueError):
            continue
        members = runs.member_folders(t, params)
        if members != [t]:  # a pack: count its members
            shared = trials.pop(t) & {runs.ERROR_FILE, runs.TIMEOUT_FILE, runs.ERROR_PICKLE}
            for member in members:
                trials[member] = files.get(member, set()) | shared
    if runs.SWEEP_FILE not in top and not trials:
        return None
    started, preset, planned, script = top.get(runs.SWEEP_FILE), None, 0, None
    if runs.SWEEP_FILE in top:
        try:
            sweep = runs.read_sweep(path)
            preset = (sweep.get("flags") or {}).get("preset")
            planned = int(sweep.get("trials") or 0)
            script = sweep.get("script")
            started = float(sweep.get("started") or started)
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    name = path.rstrip("/").rsplit("/", 1)[-1]
    script = script if isinstance(script, str) and script else None
    exp = Experiment(name, path, preset, started, script, planned=planned)
    for trial, names in trials.items():
        results = []
        name = next((n for n in (runs.REPORTS_FILE, runs.RESULT_FILE) if n in names), None)
        if name:
            with fs.open_input_stream(f"{inner}/{trial}/{name}") as f:
                results = runs.parse_jsonl(f.read().decode(errors="replace"))
        exp.counts[runs.trial_status(results, names)] += 1
    if PAGE_FILE in top:
        exp.page = _join(path, PAGE_FILE)
    return exp


def format_table(experiments: list[Experiment]) -> str:
    """One line per experiment, under a header."""
    head = [
        "experiment",
        "preset",
        "trials",
        *runs.TRIAL_STATUSES,
        "not_started",
        "started",
        "page",
    ]
    rows = [
        [
            e.name,
            e.preset or "-",
            str(e.trials),
            *[str(e.counts.get(s, 0)) for s in runs.TRIAL_STATUSES],
            str(e.not_started),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.started)) if e.started else "-",
            e.page or "-",
        ]
        for e in experiments
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]
    )


def resume_hints(experiments: list[Experiment], storage: str) -> list[str]:
    """One line per experiment with trials not started or unfinished, saying how many and the
    command that continues it (a sweep still running reads the same: ls cannot tell them
    apart)."""
    lines = []
    for e in experiments:
        left = {"never started": e.not_started, "unfinished": e.counts.get("running", 0)}
        said = [f"{n} {what}" for what, n in left.items() if n]
        if not said:
            continue
        where = "" if storage.rstrip("/") == "runs" else f" --storage-path {storage}"
        lines.append(
            f"{e.name}: {' and '.join(said)} of its {e.trials} trials; unless it is still "
            f"running, continue it with: python {_script(e)} --resume --name {e.name}{where}"
        )
    return lines


def _script(e: Experiment) -> str:
    """The sweep script that started ``e`` (``sweep.json``'s ``script``); for a sweep from
    before it was recorded, guessed from a default name (``mnist_rf-laptop-...``); else the
    the script named by its dataset, to fill in."""
    if e.script:
        return e.script
    if "_rf-" in e.name:
        return f"sweeps/{e.name.split('_rf-')[0]}_rf.py"
    return "sweeps/<dataset>_rf.py"
