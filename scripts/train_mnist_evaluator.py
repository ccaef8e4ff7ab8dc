"""Train the shipped MNIST evaluator (fixed seed) and record its sha256 and test accuracy.

    python scripts/train_mnist_evaluator.py --data-root DATA

Writes ganrf/metrics/weights/mnist_cnn.pt and mnist_cnn.json. Fails if test accuracy < 99.0%.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import torch
import torch.nn.functional as F

from ganrf.data import load_mnist, to_float
from ganrf.metrics.mnist_cnn import CARD, WEIGHTS, DigitClassifier, sha256


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default="data")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    xtr, ytr = load_mnist(args.data_root, train=True)
    xte, yte = load_mnist(args.data_root, train=False)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = args.epochs * (len(xtr) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(perm) - 127, 128):
            idx = perm[i : i + 128]
            x = to_float(xtr[idx])
            # small random shifts make the features robust to a generator's off-centre digits
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(x, (dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(to_float(x)).argmax(1) for x in xte.split(1000)])
        acc = (pred == yte).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    if acc < 0.99:
        raise SystemExit(f"test accuracy {acc:.4f} is below 0.99; not writing weights")
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    WEIGHTS.write_bytes(buf.getvalue())
    CARD.write_text(
        json.dumps(
            {
                "file": WEIGHTS.name,
                "sha256": sha256(WEIGHTS),
                "mnist_test_accuracy": round(acc, 4),
                "features": DigitClassifier.num_features,
                "seed": args.seed,
                "epochs": args.epochs,
                "trained_with": f"torch {torch.__version__}, scripts/train_mnist_evaluator.py",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes), accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
