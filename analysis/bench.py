"""Page size and time to interactive for a large experiment.

    python -m analysis.bench                 # 200 trials x 50 evaluations, with images
    python -m analysis.bench --trials 20 --evals 10

Writes a synthetic experiment folder (Tune's layout; random 242 px sample grids and 28 px ERF
maps at the first, every tenth and the last evaluation of each trial: the worst case for JPEG), builds the page, and, when Chromium is installed, opens it headless (1280 x 900) and times two
moments from the start of navigation: ``interactive_s``, the page's script has run and every
chart on the first screen is drawn (the page draws the others one at a time in the background,
a chart scrolled to first); ``all_charts_s``, every chart on the page is drawn, with no
scrolling. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

from analysis.browser import ALL_CHARTS_DRAWN, ARGS, FIRST_SCREEN_DRAWN, find_chromium
from analysis.report import write_report
from ganrf import runs
from ganrf.config import TrainConfig


def make_experiment(root: Path, trials: int, evals: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = random.Random(seed)
    exp = root / "mnist_rf-bench"
    rfs, depths = (1, 3, 5, 7, 9, 11, 13, 28), (1, 2, 3, 4)
    for i in range(trials):
        rf, depth, seed_i = rfs[i % len(rfs)], depths[(i // len(rfs)) % len(depths)], i // 32
        head = "patch" if i % 2 else "image"
        d = exp / f"rf{rf}-d{depth}-{head}-s{seed_i}-{i:05d}"
        (d / "samples").mkdir(parents=True)
        (d / "erf").mkdir()
        layers = ",".join([f"conv{rf}"] * depth)
        config = TrainConfig().to_dict() | {"d.layers": layers, "d.head": head, "seed": seed_i}
        design = {
            "layers": layers,
            "channels": ",".join(["64"] * depth),
            "head": head,
            "norm": "none",
            "dropout": 0.0,
            "depth": depth,
            "rf": depth * (rf - 1) + 1,
            "decision_rf": 28,
            "params": 50_000,
            "table": layers,
        }
        g = {"kind": "mnist", "noise_dim": 100, "width": 1.0, "params": 2_300_000, "layers": []}
        runs.write_trial_files(
            d,
            config=config,
            design={"discriminator": design, "generator": g},
            meta={runs.EXPERIMENT_KEY: "onelayer"},
        )
        lines, saved = [], []
        for e in range(1, evals + 1):
            if e % 10 == 0 or e in (1, evals):  # sample grids at some evaluations: the slider
                saved.append(100 * e)
                noise = rng.randbytes(242 * 242)
                name = f"step{100 * e:08d}.png"
                Image.frombytes("L", (242, 242), noise).save(d / "samples" / name)
                Image.frombytes("L", (28, 28), noise[: 28 * 28]).save(d / "erf" / name)
            fid = 20 + 80 * math.exp(-e / 10) + 30 / rf + rng.random()
            lines.append(
                json.dumps(
                    {
                        "progress/step": 100 * e,
                        "progress/epoch": float(e),
                        "loss/d": 1 + rng.random(),
                        "loss/g": 1 + rng.random(),
                        "metric/fid": fid,
                        "metric/local_fid": fid / 5,
                        "metric/kid_mean": fid / 50,
                        "metric/classifier_score": 9 - fid / 20,
                        "metric/class_count": 10,
                        "metric/precision": rng.random(),
                        "metric/recall": rng.random(),
                        "metric/success": int(fid < 40),
                        "erf/conv_size95": float(min(28, rf)),
                        "erf/decision_size95": float(min(28, rf + 4)),
                        "erf/conv_size50": float(max(1, rf - 2)),
                        "time/epoch_s": 5 + rf / 3,
                        "status": "running" if e < evals else "finished",
                        "artifact/samples": f"samples/step{saved[-1]:08d}.png",
                        "artifact/erf_conv": f"erf/step{saved[-1]:08d}.png",
                    }
                )
            )
        (d / runs.RESULT_FILE).write_text("\n".join(lines) + "\n")
    return exp


def time_to_interactive(page: Path) -> tuple[float, float] | None:
    """(seconds until the first screen is usable, until every chart is drawn)."""
    chromium = find_chromium()
    if not chromium:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        tab.goto(page.as_uri(), wait_until="commit")
        tab.wait_for_function(FIRST_SCREEN_DRAWN, timeout=120_000, polling=10)
        first = time.perf_counter() - t0
        tab.wait_for_function(ALL_CHARTS_DRAWN, timeout=120_000, polling=10)
        every = time.perf_counter() - t0
        browser.close()
    return first, every


def main() -> int:
    p = argparse.ArgumentParser(
        prog="python -m analysis.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--evals", type=int, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exp = make_experiment(Path(tmp), args.trials, args.evals)
        t0 = time.perf_counter()
        page = write_report([exp], Path(tmp) / "report.html")
        build_s = time.perf_counter() - t0
        result = {
            "trials": args.trials,
            "evaluations": args.evals,
            "page_mb": round(page.stat().st_size / 2**20, 2),
            "build_s": round(build_s, 2),
            "interactive_s": None,
            "all_charts_s": None,
        }
        times = time_to_interactive(page)
        if times is not None:
            result["interactive_s"], result["all_charts_s"] = (round(t, 2) for t in times)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
