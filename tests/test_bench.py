import argparse

import pytest

from ganrf.tools import bench


def test_bench_set_times_other_models_than_the_notes():
    args = argparse.Namespace(
        dataset="synthetic",
        data_root="data",
        batch_size=64,
        device="cpu",
        set=["g.width=0.25", "d.layers=conv13", "d.dropout=0"],
    )
    cfg = bench.bench_config(args, 7)
    assert (cfg.g.width, cfg.d.layers, cfg.d.dropout) == (0.25, "conv13", 0.0)
    assert cfg.schedule.steps == bench.WARMUP + 7 and cfg.schedule.batch_size == 64
    assert bench.bench_config(argparse.Namespace(**{**vars(args), "set": None}), 7).g.width == 1.0


@pytest.mark.parametrize(
    "item, message", [("nosuch=1", "unknown config key 'nosuch'"), ("x", "must be KEY=VALUE")]
)
def test_bench_refuses_a_bad_set_before_timing_anything(item, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--dataset", "synthetic", "--set", item])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
