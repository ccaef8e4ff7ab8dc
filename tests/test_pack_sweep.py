"""A packed sweep and an unpacked one give the same results, one row per (grid point, seed)."""

import pandas as pd
import pytest

from tests.test_sweep import sweep

KEYS = ["rf", "seed"]
SAME = ["experiment", "trial_status", "decision_rf", "depth", "head", "params_d", "loss", "step"]
CLOSE = ["loss/d", "loss/g", "metric/fid", "metric/kid_mean", "metric/precision"]


def test_packed_smoke_sweep_gives_the_unpacked_rows(tmp_path):
    tables = {}
    for k in ("1", "2"):
        run = sweep(
            *("--smoke-test", "--seeds", "2", "--pack", k),
            *("--storage-path", str(tmp_path), "--name", f"pack{k}"),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        tables[k] = pd.read_csv(tmp_path / f"pack{k}" / "results.csv").sort_values(KEYS)
    one, two = tables["1"], tables["2"]
    assert len(one) == len(two) == 4  # rf 1 and 5, two seeds each
    assert list(one.columns) == list(two.columns)  # the page cannot tell the difference
    assert one[KEYS].values.tolist() == two[KEYS].values.tolist()
    assert one[SAME].values.tolist() == two[SAME].values.tolist()
    for col in CLOSE:
        assert two[col].tolist() == pytest.approx(one[col].tolist(), rel=1e-3), col
    # the packed members trained in two Tune trials (one per design), the unpacked in four
    assert two["trial"].str.contains("/").all() and not one["trial"].str.contains("/").any()
