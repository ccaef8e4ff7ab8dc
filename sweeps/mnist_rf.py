"""How the discriminator's receptive field changes what an MNIST GAN learns.

    python sweeps/mnist_rf.py                          # laptop preset, real MNIST (downloads)
    python sweeps/mnist_rf.py --preset full --address auto   # the notes' protocol, on GPUs
    python sweeps/mnist_rf.py --smoke-test             # seconds, synthetic digits
    python sweeps/mnist_rf.py --experiments same_rf,heads --rfs 7 --seeds 3
    python sweeps/mnist_rf.py --resume --name NAME     # continue an interrupted sweep

Experiments (see ganrf/sweep/experiments.py): onelayer (the notes' onelayer_multi_rfs), twolayers,
same_depth, same_rf (capacity matched), heads (image vs patch). Results: runs/NAME/results.csv
and runs/NAME/report.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from analysis.publish import publish  # noqa: E402
from ganrf.sweep.cli import main  # noqa: E402
from ganrf.sweep.experiments import EXPERIMENTS, Space  # noqa: E402
from ganrf.sweep.presets import Preset  # noqa: E402

PRESETS = {
    "smoke": Preset(
        about="seconds on a CPU: synthetic digits, tiny models, 4 steps",
        base={
            "data.dataset": "synthetic",
            "data.synthetic_size": 256,
            "g.width": 0.0625,
            "d.width": 0.125,
            "schedule.batch_size": 32,
            "schedule.steps": 4,
            "schedule.eval_every_steps": 2,
            "eval.samples": 200,
            "eval.erf_images": 8,
        },
        space=Space(experiments=("onelayer",), rfs=(1, 5), seeds=1),
    ),
    "laptop": Preset(
        about="the default: real MNIST, the notes' onelayer at rf 1, 3, 5, 13, two seeds each; "
        "about 16 min on 2 CPU cores",
        base={
            "g.width": 0.25,
            "schedule.batch_size": 64,
            "schedule.steps": 3000,
            "schedule.eval_every_steps": 1000,
            "eval.samples": 2000,
            "optim.lr_g": 2e-4,
            "optim.lr_d": 2e-4,
            "optim.beta1": 0.5,
        },
        space=Space(experiments=("onelayer",), rfs=(1, 3, 5, 13), seeds=2),
    ),
    "full": Preset(
        about="the notes' protocol for GPUs: every experiment, batch 256, 50 epochs, 3 seeds",
        base={
            "schedule.batch_size": 256,
            "schedule.epochs": 50,
            "schedule.eval_every": 5,
            "eval.samples": 10_000,
        },
        space=Space(experiments=EXPERIMENTS, seeds=3),
    ),
}

if __name__ == "__main__":
    sys.exit(
        main(
            None,
            prog="mnist_rf.py",
            doc=__doc__,
            dataset="mnist",
            presets=PRESETS,
            publish=publish,
        )
    )
