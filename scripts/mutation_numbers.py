"""How far each mutant of ``ganrf/metrics`` moves the numbers a trial reports.

    mutmut run --max-children 2                      # first: the mutants and their test verdicts
    mutmut results | (cd mutants && python scripts/mutation_numbers.py --data-root /abs/DATA -)

Runs one fixed workload with the unmutated code, then once per named mutant (names like
``ganrf.metrics.scores.x_prdc__mutmut_7``, read from the arguments or, with ``-``, from standard
input: any text holding them, such as ``mutmut results``), in this process, with the mutant
switched on the way mutmut's trampolines read it (``MUTANT_UNDER_TEST``), a fresh reference cache
and the evaluator's memo cleared. It prints, per mutant, the largest relative change of any
reported number (``crash`` where the workload raised, ``same`` where nothing moved) and the
number that moved most, and ends with the mutants that move a number by more than ``--tolerance``
(default 1%): those must be killed by a test.

The workload is what the metrics report in a trial, on real MNIST (``--samples`` images, 500 by
default): the evaluator's reference and floor; every score of the calibration cases of docs/metrics.md
(``scripts/metric_references.py``: training digits, blurred, noise, one digit, fragment mixtures,
blobs, independent pixels); a whole evaluation of a seeded generator and onelayer discriminator
(evaluation noise, both ERFs and their images); the conv and decision ERF of a patch head, a
stride-2 stack and a dilated stack; and an RGB class-folder dataset scored with a stand-in feature
network (its reference and floor path; the Inception network itself needs weights this does not
load). KID draws random subsets: the global RNG is seeded before each score.

Run from the repository it scores the unmutated code only (a check of the workload itself).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # mutants/ when run from there

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ganrf.config import TrainConfig  # noqa: E402
from ganrf.design.designs import DiscriminatorDesign  # noqa: E402
from ganrf.models import build_discriminator, generator_for  # noqa: E402

MUTANT = re.compile(r"\bganrf\.metrics\.[\w.]+__mutmut_\d+\b")
CPU = torch.device("cpu")


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout


def rgb_images(count: int, seed: int, size: int = 64) -> np.ndarray:
    """``count`` seeded random RGB images (N, H, W, 3) uint8: 8x8 blocks plus pixel noise."""
    rng = np.random.default_rng(seed)
    smooth = rng.random((count, size // 8, size // 8, 3))
    img = np.kron(smooth, np.ones((1, 8, 8, 1))) * 200 + rng.random((count, size, size, 3)) * 55
    return img.astype(np.uint8)


def rgb_folder(root: Path, count: int = 80) -> None:
    """A class-folder tree (two classes) of ``rgb_images``."""
    for i, img in enumerate(rgb_images(count, seed=0)):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")


def standin_net():
    """A fixed random conv feature network for RGB images (no classifier, no stem)."""
    from ganrf.metrics.features import FeatureNet

    conv = torch.nn.Conv2d(3, 16, 5, stride=4)
    with torch.no_grad():
        conv.weight.copy_(
            torch.randn(conv.weight.shape, generator=torch.Generator().manual_seed(1))
        )
        conv.bias.zero_()

    def features(x):
        return torch.relu(conv(x)).mean((2, 3))

    return FeatureNet("standin", features)


def workload(data_root: str, n: int, cases: dict, rgb_root: Path, out_dir: Path) -> dict:
    """Every number the metrics report for the fixed inputs, by a flat name."""
    from ganrf.metrics import conv_erf, decision_erf, evaluate

    out: dict[str, float] = {}

    def keep(prefix: str, report: dict) -> None:
        for k, v in report.items():
            if isinstance(v, bool | int | float):
                out[f"{prefix}{k}"] = float(v)
            elif isinstance(v, str) and k.startswith("artifact/"):  # the ERF image's pixels
                px = np.asarray(Image.open(out_dir / v), dtype=np.float64)
                out[f"{prefix}{k}:sum"], out[f"{prefix}{k}:max"] = px.sum(), px.max()
            elif isinstance(v, str):
                out[f"{prefix}{k}:{v}"] = 1.0

    cfg = TrainConfig.from_dict(
        {
            "data.root": data_root,
            "data.download": False,
            "eval.samples": n,
            "eval.erf_images": 16,
            "d.layers": "conv5",
            "d.dropout": 0.0,
            "g.width": 0.0625,
            "seed": 3,
        }
    )
    ev = evaluate.Evaluator(cfg, CPU)
    out["fid_floor"] = ev.fid_floor
    for name, (_, images) in cases.items():
        torch.manual_seed(0)
        keep(f"{name}/", ev.score_images(images))
    torch.manual_seed(5)
    g, d = generator_for(cfg), build_discriminator(cfg.design())
    torch.manual_seed(0)
    keep("evaluation/", ev(g=g, d=d, cfg=cfg, device=CPU, out_dir=out_dir, step=7))

    real = ev.real_images
    designs = {
        "patch conv3x3": DiscriminatorDesign.from_spec(
            "conv3,conv3,conv3", head="patch", dropout=0.0
        ),
        "stride-2 conv5s2x2": DiscriminatorDesign.from_spec(
            "conv5s2,conv5s2", head="image", dropout=0.0
        ),
        "dilated conv3d2x2": DiscriminatorDesign.from_spec(
            "conv3d2,conv3d2", head="patch", dropout=0.0
        ),
    }
    for name, design in designs.items():
        torch.manual_seed(11)
        dd = build_discriminator(design)
        for kind, fn in (("conv", conv_erf), ("decision", decision_erf)):
            e = fn(dd, real, design)
            keep(f"{name}/{kind}/", {"r50": e.radius50, "r95": e.radius95, "s95": e.size95})
            shown = e.map / e.map.max()  # what the ERF image shows (save_erf)
            moment = torch.rand(e.map.shape, generator=torch.Generator().manual_seed(4))
            out[f"{name}/{kind}/image"] = float((shown * moment).sum())

    rgb = TrainConfig.from_dict(
        {
            "data.dataset": "folder",
            "data.root": str(rgb_root),
            "data.channels": 3,
            "data.image_size": 64,
            "data.subset": 80,
            "data.workers": 0,
            "g.kind": "dcgan",
            "eval.samples": 40,
            "seed": 2,
        }
    )
    rev = evaluate.Evaluator(rgb, CPU, feature_net=standin_net())
    out["rgb/fid_floor"] = rev.fid_floor
    fake = torch.from_numpy(rgb_images(60, seed=1)).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.manual_seed(0)
    keep("rgb/", rev.score_images(fake))
    return out


def reset(work: Path) -> None:
    """Forget what a previous mutant computed: memoised networks and cached references."""
    from ganrf.metrics import mnist_cnn

    mnist_cnn.load_evaluator.cache_clear()
    shutil.rmtree(work / "cache", ignore_errors=True)
    (work / "cache").mkdir()
    os.environ["GANRF_CACHE"] = str(work / "cache")


def relative(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    return abs(a - b) / max(abs(b), 1e-9)  # rounding noise of a zero (a KID std) is no change


def compare(got: dict, base: dict) -> tuple[float, str]:
    worst, where = 0.0, ""
    for k in sorted(set(got) | set(base)):
        r = relative(got[k], base[k]) if k in got and k in base else math.inf
        if r > worst:
            worst, where = r, k
    return worst, where


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("mutants", nargs="*", help="mutant names, or - to read them from stdin")
    p.add_argument("--data-root", default="data", help="where MNIST is (MNIST/raw)")
    p.add_argument("--samples", type=int, default=500, help="n for the MNIST workload")
    p.add_argument("--tolerance", type=float, default=0.01, help="largest harmless change")
    p.add_argument("--timeout", type=int, default=300, help="seconds per mutant")
    args = p.parse_args()
    text = sys.stdin.read() if args.mutants == ["-"] else " ".join(args.mutants)
    names = list(dict.fromkeys(MUTANT.findall(text)))
    import ganrf.metrics.scores as scores

    prog = "mutation_numbers.py: error:"
    if args.mutants and not names:
        print(
            f"{prog} no mutant names (ganrf.metrics...__mutmut_N) in {text[:60]!r}", file=sys.stderr
        )
        return 2
    in_mutants = any("__mutmut_" in k for k in vars(scores))
    if names and not in_mutants:
        print(
            f"{prog} these are not mutmut's mutants: run this inside the mutants/ folder that "
            "`mutmut run` made (cd mutants && python scripts/mutation_numbers.py ...)",
            file=sys.stderr,
        )
        return 2

    from scripts.metric_references import cases as calibration_cases

    try:
        cases = calibration_cases(args.data_root, args.samples)
    except RuntimeError as e:  # DataError: no MNIST under --data-root
        print(f"{prog} {e} (--data-root {args.data_root})", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ganrf-mutnum-"))
    rgb_folder(work / "rgb")
    signal.signal(signal.SIGALRM, _alarm)
    os.environ["MUTANT_UNDER_TEST"] = ""
    reset(work)
    t = time.perf_counter()
    base = workload(args.data_root, args.samples, cases, work / "rgb", work / "out")
    print(f"unmutated: {len(base)} numbers in {time.perf_counter() - t:.1f} s", flush=True)
    if not names:
        for k, v in base.items():
            print(f"  {k} = {v:.6g}")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    moved = []
    for i, name in enumerate(names, 1):
        os.environ["MUTANT_UNDER_TEST"] = name
        reset(work)
        signal.alarm(args.timeout)
        try:
            got = workload(args.data_root, args.samples, cases, work / "rgb", work / "out")
            worst, where = compare(got, base)
            verdict = "same" if worst == 0 else f"{worst:.3g} ({where})"
        except Timeout:
            worst, verdict = math.inf, "timeout"
        except Exception as e:  # a crash reports no number
            worst, verdict = -1.0, f"crash ({type(e).__name__})"
        finally:
            signal.alarm(0)
            os.environ["MUTANT_UNDER_TEST"] = ""
        if worst > args.tolerance:
            moved.append(name)
        print(f"[{i}/{len(names)}] {name}: {verdict}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{len(moved)} of {len(names)} move a reported number by more than {args.tolerance:.0%}:"
    )
    for name in moved:
        print(f"  {name}")
    return 1 if moved else 0


if __name__ == "__main__":
    raise SystemExit(main())
