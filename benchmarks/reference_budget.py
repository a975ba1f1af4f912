"""How long must a study's shortcut-free reference train? Judged on a VALIDATION split, never on test.

Issue 13 asks each reference to reach what its architecture reaches (a small CNN on Fashion-MNIST: at
least 0.90 test accuracy). This trains a study's ``reference`` configuration (no shortcut in training)
exactly as the evidence benchmark does, under several training budgets, and scores it on the study's
validation split (``evidence.load_study_data(eval_split="val")``: on the Fashion-MNIST studies the last
10000 images of the training file, held out of training). The budget for the evidence run is chosen from
this table; the test split is not read.

A budget is ``TRAIN_IMAGESxEPOCHS``: the evidence benchmark's ``train`` and ``epochs`` size entries, which fix
the number of optimiser steps as ``epochs * ceil(train / batch_size)``. With the validation split held out,
a budget asking for more training images than remain draws all of them and keeps its step count.

    python benchmarks/reference_budget.py --study decoy_fmnist --budgets 20000x6,60000x2,60000x4 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model, select_backend, usable_cores  # noqa: E402

select_backend()

import numpy as np  # noqa: E402

import evidence  # noqa: E402


def parse_budget(text: str) -> tuple[int, int]:
    """``"60000x2"`` -> ``(60000, 2)``."""
    train, sep, epochs = text.partition("x")
    if not sep or not train.isdigit() or not epochs.isdigit() or int(train) < 1 or int(epochs) < 1:
        raise SystemExit(f"Expected a budget TRAIN_IMAGESxEPOCHS such as 60000x2. Received: {text!r}")
    return int(train), int(epochs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="decoy_fmnist", choices=sorted(evidence.STUDIES))
    parser.add_argument("--budgets", default="20000x6,60000x2,60000x4",
                        help="comma-separated TRAIN_IMAGESxEPOCHS (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per budget (default: %(default)s)")
    parser.add_argument("--val-images", type=int, default=10000,
                        help="validation images scored per run (default: %(default)s, all of Fashion-MNIST's)")
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args(argv)
    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    import keras

    study = evidence.STUDIES[args.study]
    reference = next(c for c in study.configs if c.name == "reference")
    base = evidence.SIZES["default"]
    print(f"{study.name} reference, validation split; {cpu_model()}, {usable_cores()} cores, "
          f"backend {keras.backend.backend()}", flush=True)
    rows = []
    for train, epochs in budgets:
        size = {**base, "studies": {**base["studies"], study.name: {
            **base["studies"].get(study.name, {}), "train": train, "epochs": epochs, "test": args.val_images}}}
        for seed in range(args.seeds):
            start = time.perf_counter()
            r = evidence.run_one(study, reference, seed, size, eval_split="val")
            r.update(budget=f"{train}x{epochs}", wall_seconds=time.perf_counter() - start)
            rows.append(r)
            print(json.dumps(r), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print(f"\n| budget | training images | optimiser steps | val accuracy (mean ± std over {args.seeds} seeds) "
          "| train s per run |")
    print("|---|---|---|---|---|")
    for train, epochs in budgets:
        runs = [r for r in rows if r["budget"] == f"{train}x{epochs}"]
        acc = np.array([r["accuracy"] for r in runs])
        std = acc.std(ddof=1) if len(acc) > 1 else 0.0
        print(f"| {train}x{epochs} | {runs[0]['train_images']} | {runs[0]['steps']} | {acc.mean():.4f} ± {std:.4f} "
              f"| {np.mean([r['train_seconds'] for r in runs]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
