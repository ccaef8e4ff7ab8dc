"""The MNIST evaluator: a small CNN digit classifier shipped with the package.

FID's Inception network means nothing on 28x28 digits and cannot be downloaded everywhere, so
MNIST metrics use this network's penultimate layer (128 features) instead, with the same
weights on every machine and node. ``scripts/train_mnist_evaluator.py`` trains it (fixed seed)
and writes the weights and ``mnist_cnn.json`` (sha256, test accuracy) beside this file.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

WEIGHTS = Path(__file__).parent / "weights" / "mnist_cnn.pt"
CARD = WEIGHTS.with_suffix(".json")
FEATURES = 128
# body[:STEM_LAYERS] ends at the second conv's ReLU: (B, 64, 14, 14), each unit seeing 8x8 pixels
# (conv3 -> pool2 -> conv3). Its vectors are the local features of ``metric/local_fid``.
STEM_LAYERS = 7


class DigitClassifier(nn.Module):
    """conv32-pool-conv64-pool-fc128-fc10 with BatchNorm; inputs in [-1, 1].

    Small on purpose (about 8.5 MFLOP per image): 10,000 samples must be scored in seconds on a
    2-core CPU.
    """

    num_features = FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(True),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURES, bias=False),
            nn.BatchNorm1d(FEATURES),
            nn.ReLU(True),
        )
        self.classify = nn.Linear(FEATURES, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations, ``(B, 128)``: the MNIST metrics' feature space."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.body(x))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def load_evaluator(device: str = "cpu") -> DigitClassifier:
    """The shipped evaluator in eval mode, its file checked against the recorded sha256."""
    if not WEIGHTS.exists() or not CARD.exists():
        raise FileNotFoundError(
            f"the MNIST evaluator weights are missing ({WEIGHTS}); reinstall gan_rf or run "
            "scripts/train_mnist_evaluator.py"
        )
    card = json.loads(CARD.read_text())
    if sha256(WEIGHTS) != card["sha256"]:
        raise RuntimeError(
            f"{WEIGHTS} does not match its recorded sha256; scores would not compare across "
            "machines: reinstall gan_rf"
        )
    model = DigitClassifier()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval().requires_grad_(False).to(device)


def evaluator_id() -> str:
    """Name and short hash, for cache keys and reports."""
    return "mnist_cnn-" + json.loads(CARD.read_text())["sha256"][:12]
