"""``--dry-run --estimate``: a sweep's cost on this machine, projected from a few timed steps."""

import io
import sys
import time
from pathlib import Path

from ganrf.config import TrainConfig
from ganrf.sweep import estimate as est
from ganrf.sweep.trial import Trial, make_packs
from ganrf.training.loop import train

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "data.dataset": "synthetic",
    "data.synthetic_size": 256,
    "g.width": 0.125,
    "d.channels": "8",
    "eval.samples": 64,
    "eval.grid": 4,
    "eval.erf_images": 2,
    "schedule.batch_size": 32,
    "schedule.steps": 3000,
    "schedule.eval_every_steps": 1000,
}


def trial(layers: str, seed: int, **over) -> Trial:
    return Trial(TrainConfig.from_dict({**TINY, "d.layers": layers, "seed": seed, **over}))


def test_schedule_counts_the_loops_evaluations():
    """Steps and evaluations as the loop has them: checked against the reports of a real run."""
    t = trial("conv3", 0, **{"schedule.steps": 10, "schedule.eval_every_steps": 4})
    reports = []
    train(t.config, report=lambda m, ckpt: reports.append(m["progress/step"]))
    assert reports == [4, 8, 10]
    assert est.schedule(t, steps_per_epoch=8) == (10, 3)
    by_epochs = trial("conv3", 0, **{"schedule.steps": 0, "schedule.epochs": 50})
    by_epochs.config.schedule.eval_every = 5
    by_epochs.config.schedule.eval_every_steps = 0
    assert est.schedule(by_epochs, steps_per_epoch=234) == (11_700, 10)
    assert est.schedule(trial("conv3", 0), steps_per_epoch=8) == (3000, 3)


def test_seeds_share_one_timing_and_the_total_is_summed_by_hand():
    trials = [trial(layers, seed) for layers in ("conv1", "conv3") for seed in (0, 1, 2)]
    timed, evaluated = [], []

    def timer(pack, steps):
        timed.append((pack[0].config.d.layers, steps))
        return {"conv1": 0.5, "conv3": 2.0}[pack[0].config.d.layers], 100

    def eval_timer(t):
        evaluated.append(t.config.d.layers)
        return 4.0

    log = io.StringIO()
    costs = est.estimate(
        make_packs(trials, 1), steps=7, log=log, timer=timer, eval_timer=eval_timer
    )
    assert timed == [("conv1", 7), ("conv3", 7)]  # one timing per design, not per seed
    assert evaluated == ["conv1"]  # the same generator and evaluation: timed once
    assert [(c.count, c.steps, c.evaluations, c.eval_s) for c in costs] == [(3, 3000, 3, 4.0)] * 2
    assert log.getvalue().splitlines()[1].startswith("timing 2/2: rf3-d1-conv3-image")
    out = io.StringIO()
    total = est.print_estimate(costs, "cpu, 2 threads", steps=7, out=out)
    # conv1: 3 x (3000 x 0.5 + 3 x 4.0) = 4,536 s; conv3: 3 x (3000 x 2.0 + 12) = 18,036 s
    assert total == 22_572
    lines = out.getvalue().splitlines()
    assert lines[1].split()[1:] == ["3", "0.500", "3000", "3", "4.0", "25.2", "min"]
    assert lines[2].split()[1:] == ["3", "2.000", "3000", "3", "4.0", "1.7", "h"]
    assert "6 packed trials one after another: 6.3 h (timed over 7 steps" in lines[-1]


def test_packed_members_are_timed_together():
    trials = [trial("conv3", seed) for seed in range(4)]
    seen = []
    est.estimate(
        make_packs(trials, 2),
        log=io.StringIO(),
        timer=lambda pack, steps: seen.append(len(pack)) or (1.0, 10),
        eval_timer=lambda t: 2.0,
    )
    assert seen == [2]  # two packs of two seeds each: one timing of a pack of two
    cost = est.PackCost(
        "p", count=2, s_per_step=1.0, steps=10, evaluations=3, eval_s=2.0, members=2
    )
    assert cost.seconds == 10 * 1.0 + 3 * 2.0 * 2 and cost.total_s == 2 * 22


def test_a_real_timing_reads_the_loops_clock():
    s_per_step, spe = est.time_pack([trial("conv3", 0)], steps=5)
    assert spe == 256 // 32 and 0 < s_per_step < 5


def test_hours():
    assert [est.hours(s) for s in (42, 450, 177_120)] == ["42 s", "7.5 min", "49.2 h"]


def run_sweep(tmp_path, monkeypatch, capsys, *args, smoke=True):
    """The sweep script's main, in this process; Ray is out of reach (a regression that would
    start a sweep fails at once), and runs go under ``tmp_path``."""
    from tests.test_bad_input import sweep_main
    from tests.test_sweep import _NoRay

    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    argv = [*(["--smoke-test"] * smoke), *args, "--storage-path", str(tmp_path / "runs")]
    code = sweep_main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_estimate_needs_dry_run_and_enough_steps(tmp_path, monkeypatch, capsys):
    for args, says in [
        (["--estimate"], "--estimate times the grid without running it: add --dry-run"),
        (
            ["--resume", "--name", "x", "--estimate"],  # a new user's resume ran the sweep
            "add --dry-run (and drop --resume)",
        ),
        (["--dry-run", "--estimate", "4"], "--estimate 4: time at least 5 steps"),
        (
            ["--preset", "laptop", "--data-root", str(tmp_path / "nodata")]
            + ["--set", "data.download=false", "--dry-run", "--estimate"],
            f"(--data-root {tmp_path / 'nodata'}: pass --data-root DIR",  # before the grid
        ),
    ]:
        code, out, err = run_sweep(
            tmp_path, monkeypatch, capsys, *args, smoke="--preset" not in args
        )
        assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
        assert says in err and not out
        assert not (tmp_path / "runs").exists()


def test_an_evaluation_is_timed_after_its_warm_up(monkeypatch):
    """The first call builds the reference statistics (cached on disk): a one-time cost."""
    import ganrf.metrics.evaluate

    calls = []

    class Slow:
        def __init__(self, cfg, device, design):
            pass

        def __call__(self, **kw):
            calls.append(kw["step"])
            time.sleep(1.0 if len(calls) == 1 else 0.05)

    monkeypatch.setattr(ganrf.metrics.evaluate, "Evaluator", Slow)
    t = trial("conv3", 0)
    seconds = est.time_evaluation(t)
    assert len(calls) == 2 and 0.05 <= seconds < 0.5
    t.config.eval.metrics = False
    assert est.time_evaluation(t) == 0.0 and len(calls) == 2


def test_a_busy_machine_is_named(monkeypatch):
    monkeypatch.setattr(est.os, "getloadavg", lambda: (3.9, 2.0, 1.0))
    assert est.busy(cores=2) == (
        "warning: this machine is already busy (load 3.9 on 2 cores), so the timings read "
        "high; estimate on a quiet machine"
    )
    monkeypatch.setattr(est.os, "getloadavg", lambda: (1.0, 2.0, 1.0))
    assert est.busy(cores=2) is None


def test_smoke_grid_estimate_end_to_end(tmp_path, monkeypatch, capsys):
    code, out, err = run_sweep(tmp_path, monkeypatch, capsys, "--dry-run", "--estimate", "5")
    assert code == 0, err[-2000:]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("packed trial"))
    rows = [line.split() for line in lines[header + 1 : -1]]
    assert [r[0] for r in rows] == ["rf1-d1-conv1-image-s0", "rf5-d1-conv5-image-s0"]
    assert all(float(r[2]) > 0 and r[3:5] == ["4", "2"] for r in rows)  # s/step, steps, evals
    assert "2 packed trials one after another" in lines[-1]
    assert "timing 2/2: rf5-d1-conv5-image-s0" in err
