"""scripts/gpu_session.py: how the lent GPU's minutes are shared out (CI runs the whole script
with --cpu-dry-run in .ci/run)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_session.py"
spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
session = importlib.util.module_from_spec(spec)
spec.loader.exec_module(session)

# What `python -m ganrf.tools.bench --device cpu --dataset synthetic --pack 1,2 ...` printed.
BENCH = """\
{"members": 1, "pack_epoch_s": 523.6862, "model_epochs_per_s": 0.00191, "full_preset_projected_min": 39789.0}
{"members": 2, "pack_epoch_s": 5924.254, "model_epochs_per_s": 0.000338, "full_preset_projected_min": 222672.0}

cpu, torch 2.14.1+cu130, batch 16, 2 timed steps, evaluation 34.17 s (10,000 samples)
| pack | s / pack-epoch | model-epochs / s | full preset, projected |
"""


@pytest.mark.parametrize(
    "seconds, rate, eval_s, epochs",
    [
        (600, 2.0, 2.0, 27),  # 0.7*600 - 24*2*2 = 324 s; 324 s * 2 model-epochs/s / 24 trials
        (420, 8.0, 0.5, 50),  # 0.7*420 - 24 = 270 s; 270*8/24 = 90 epochs, capped at the notes' 50
        (60, 0.1, 30.0, 1),  # evaluations alone overrun: still one epoch, never 0 or negative
        (1000, 0.5, 5.0, 9),  # 700 - 240 = 460 s; 460*0.5/24 = 9.58
    ],
)
def test_fit_epochs(seconds, rate, eval_s, epochs):
    assert session.fit_epochs(seconds, rate, eval_s) == epochs


def test_parse_bench_reads_rows_and_the_evaluation():
    figures = session.parse_bench(BENCH)
    assert [r["members"] for r in figures["packs"]] == [1, 2]
    assert figures["packs"][1]["model_epochs_per_s"] == 0.000338
    assert figures["eval_s"] == 34.17


def test_parse_bench_refuses_output_without_figures():
    with pytest.raises(ValueError, match="no pack rows"):
        session.parse_bench("Traceback (most recent call last):\n  ...\n")


def test_no_output_folder_is_one_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 2
    assert "give --out DIR or set OUT" in run.stderr
