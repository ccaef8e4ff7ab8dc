"""What a sweep shows while it runs: one line per trial change (Tune's full table at the end
and on ``kill -USR1 PID``), and results.csv and the page refreshed as trials report (part of
the Tune adapter, :mod:`ganrf.sweep.raytune.tune`)."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from typing import Any

from ray import tune

from ganrf import runs
from ganrf.metrics.spec import progress_columns

log = logging.getLogger(__name__)

PUBLISH_EVERY_ENV = "GANRF_PUBLISH_EVERY_S"
PUBLISH_EVERY_S = 30.0  # partial results.csv and page at most this often while a sweep runs


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


class _Lines(_Reporter):
    """One line per trial change (:func:`trial_changes`) instead of Tune's table every 30 s: a
    13-minute laptop sweep printed 26 tables. The full table comes at the end, and at once on
    SIGUSR1 (the first line says the command)."""

    def __init__(self, exp_path: str, **kw: Any) -> None:
        super().__init__(exp_path, **kw)
        self._seen: dict[str, tuple[str, int]] = {}
        self._table_asked = False
        self._started = False

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the RunConfig (tuner.pkl)
        return {**self.__dict__, "_seen": {}, "_started": False}

    def _ask_table(self, *_: Any) -> None:
        self._table_asked = True

    def should_report(self, trials: list, done: bool = False) -> bool:
        return True  # every step of Tune's loop; report() prints only what changed

    def report(self, trials: list, done: bool, *sys_info: str) -> None:
        if not self._started:
            self._started = True
            try:  # the driver's main thread, where Tune's loop runs
                signal.signal(signal.SIGUSR1, self._ask_table)
                ask = f" (for it now: kill -USR1 {os.getpid()})"
            except (ValueError, AttributeError):  # not the main thread, or no SIGUSR1 (Windows)
                ask = ""
            print(f"progress: one line per trial change and the full table at the end{ask}")
        for line in trial_changes(self._seen, trials, time.strftime("%H:%M:%S")):
            print(line, flush=True)
        if done or self._table_asked:
            self._table_asked = False
            super().report(trials, done, *sys_info)


def trial_changes(seen: dict[str, tuple[str, int]], trials: list, now: str) -> list[str]:
    """The lines for what changed in ``trials`` (Tune's) since ``seen`` (trial id -> (status,
    reports)), which is updated: started, reported (with the progress columns), finished (or
    diverged, timed out) and errored (with its log)."""
    lines = []
    for t in trials:
        result = t.last_result or {}
        reports = int(result.get("training_iteration") or 0)
        status, before = t.status, seen.get(t.trial_id, ("PENDING", 0))
        seen[t.trial_id] = (status, reports)
        name = str(t).rsplit("-", 1)[0]  # the trial's name without Tune's id
        if status == "RUNNING" and before[0] != "RUNNING":
            lines.append(f"{now} {name} started")
        if reports > before[1]:
            shown = [f"step {result.get('progress/step', '?')}"]
            for key, column in progress_columns().items():
                value = result.get(key)
                if isinstance(value, (int, float)):
                    shown.append(f"{column} {value:.4g}")
            lines.append(f"{now} {name} reported {', '.join(shown)}")
        if status == "TERMINATED" and before[0] != "TERMINATED":
            ended = str(result.get("status") or "finished").replace("_", " ")
            lines.append(f"{now} {name} {ended}")
        if status == "ERROR" and before[0] != "ERROR":
            log_file = f"{t.path}/{runs.ERROR_FILE}" if getattr(t, "path", None) else "its folder"
            lines.append(f"{now} {name} errored; its log: {log_file}")
    return lines


def reporter(exp_path: str) -> tune.CLIReporter:
    # Rows are named by the trial (its design and seed); columns come from the metric registry.
    # Tune's own status column is the only "status": the trial's result (finished, diverged)
    # is in results.csv and the page.
    return _Lines(
        exp_path,
        metric_columns={"progress/epoch": "epoch", **progress_columns()},
        parameter_columns={f"{runs.TRIAL_KEY}/0/{runs.EXPERIMENT_KEY}": "experiment"},
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
        except FileNotFoundError:  # no trial has a folder yet: nothing to show
            pass
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
