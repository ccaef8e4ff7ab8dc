"""How the discriminator's receptive field changes what an MNIST GAN learns.

    python sweeps/mnist_rf.py                          # laptop preset, real MNIST (downloads)
    python sweeps/mnist_rf.py --preset full --address auto   # the notes' protocol, on GPUs
    python sweeps/mnist_rf.py --smoke-test             # seconds, synthetic digits
    python sweeps/mnist_rf.py --preset questions --experiments onelayer   # one of the four
    python sweeps/mnist_rf.py --experiments same_rf,heads --rfs 7 --seeds 3
    python sweeps/mnist_rf.py --resume --name NAME     # continue an interrupted sweep

Experiments (see ganrf/sweep/experiments.py): onelayer (the notes' onelayer_multi_rfs), twolayers,
same_depth, same_rf (capacity matched), heads (image vs patch), and control (the notes' own
discriminator on seeds of its own: does the schedule let any D pass the verdicts?). Results:
runs/NAME/results.csv and runs/NAME/report.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from analysis.publish import publish  # noqa: E402
from ganrf.sweep.cli import main  # noqa: E402
from ganrf.sweep.experiments import EXPERIMENTS, QUESTIONS_DEFAULTS, Space  # noqa: E402
from ganrf.sweep.presets import Preset  # noqa: E402

# The laptop models and optimiser: a quarter-width generator, DCGAN's Adam settings.
LAPTOP = {
    "g.width": 0.25,
    "schedule.batch_size": 64,
    "eval.samples": 2000,
    "optim.lr_g": 2e-4,
    "optim.lr_d": 2e-4,
    "optim.beta1": 0.5,
}
# The schedule the positive control fixed (docs/questions.md; scripts/pilot_control.py):
# the fewest steps at which the notes' discriminator drew recognisable digits in 2 of 3 pilot seeds.
QUESTIONS_STEPS = 6000

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
        about="the default: real MNIST, the notes' onelayer at rf 1, 3, 5, 13 and the positive "
        "control, two seeds each; about 23 min on 2 CPU cores (estimated)",
        base={**LAPTOP, "schedule.steps": 3000, "schedule.eval_every_steps": 1000},
        space=Space(experiments=("onelayer", "control"), rfs=(1, 3, 5, 13), seeds=2),
    ),
    "questions": Preset(
        about="the notes' four questions and the positive control on real MNIST at the schedule "
        f"the control fixed ({QUESTIONS_STEPS:,} steps), 3 seeds; hours on 2 CPU cores: run it "
        "piece by piece with --experiments (each piece's cost: --dry-run --estimate)",
        base={
            **LAPTOP,
            "schedule.steps": QUESTIONS_STEPS,
            "schedule.eval_every_steps": QUESTIONS_STEPS // 2,
        },
        space=Space(
            experiments=("onelayer", "same_rf", "same_depth", "heads", "control"),
            seeds=3,
            stack_channels=16,
            defaults=QUESTIONS_DEFAULTS,
        ),
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
