"""MAXL: step time (second- and first-order vs a single-task step) and primary accuracy on kakapo.

    python benchmarks/maxl_step.py                  # step-time table (interleaved rounds, medians)
    python benchmarks/maxl_step.py --evidence       # single-task vs human auxiliary vs MAXL, per seed
    python benchmarks/maxl_step.py --backend jax

The single-task step is a plain ``keras.Model`` (the same backbone and
primary head, focal loss, SGD) trained with ``train_on_batch``; the MAXL steps
are ``MAXLModel.train_on_batch`` (real step + generator meta-step). Ratios are
paired within each round, medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import interleaved_rounds, load_average, machine_lines, select_backend  # noqa: E402

select_backend()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_priors as kp  # noqa: E402
from keras_priors.maxl import MAXLModel  # noqa: E402


def _focal():
    # alpha=1: the reference's focal form -sum t (1-p)^2 log p, the loss MAXLModel uses.
    return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0, from_logits=True)


def plain_model(image_size, aux_classes=None, lr=0.01):
    """Backbone + primary head (+ a human auxiliary head): the baselines."""
    backbone = kp.zoo.get_spec("resnet_tiny").builder((image_size, image_size, 3))
    inputs = keras.Input((image_size, image_size, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs)["P3"])
    outputs = {"logits": keras.layers.Dense(2, name="logits")(pooled)}
    if aux_classes:
        outputs["aux_logits"] = keras.layers.Dense(aux_classes, name="aux_logits")(pooled)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss={k: _focal() for k in outputs},
                  metrics={"logits": ["accuracy"]})
    return model


def maxl_model(image_size, psi, order, lr=0.01):
    backbone = kp.zoo.get_spec("resnet_tiny").builder((image_size, image_size, 3))
    model = MAXLModel(backbone, psi=psi, order=order, virtual_learning_rate=lr)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    return model


def step_times(args):
    data = kp.data.make_kakapo(args.batch_size, image_size=args.image_size, seed=0)
    x, y = data["image"], data["label"]
    single = plain_model(args.image_size)
    onehot = {"logits": keras.ops.one_hot(y, 2)}
    second = maxl_model(args.image_size, args.psi, "second")
    first = maxl_model(args.image_size, args.psi, "first")
    batch = {"image": x, "label": y}
    steps = {
        "single-task": lambda: single.train_on_batch(x, onehot),
        "maxl first-order": lambda: first.train_on_batch(batch),
        "maxl second-order": lambda: second.train_on_batch(batch),
    }
    load0 = load_average()
    per_round, first_step = interleaved_rounds(steps, args.rounds, args.steps_per_round, warmup=3)
    base = per_round["single-task"]
    print(f"\n### MAXL step time: resnet_tiny, {args.image_size} px, batch {args.batch_size}, psi={args.psi}\n")
    print("| step | median ms | ratio to single-task (median of paired rounds) | first step s |")
    print("|---|---|---|---|")
    for name, times in per_round.items():
        ratio = statistics.median(t / b for t, b in zip(times, base))
        print(f"| {name} | {1000 * statistics.median(times):.1f} | {ratio:.2f}x | {first_step[name]:.1f} |")
    print()
    print("\n".join(machine_lines(load0)))


def evidence(args):
    size = args.image_size
    results = {"single-task": [], "human auxiliary": [], f"MAXL ({args.order}-order)": []}
    for seed in args.seeds:
        train = kp.data.kakapo("train", image_size=size, num_samples=args.train_samples, seed=seed,
                               as_numpy=True)
        test = kp.data.kakapo("test", image_size=size, num_samples=args.test_samples, seed=seed, as_numpy=True)
        aux_classes = int(train["aux_label"].max()) + 1
        y_train = {"logits": np.eye(2, dtype="float32")[train["label"]],
                   "aux_logits": np.eye(aux_classes, dtype="float32")[train["aux_label"]]}
        for name in results:
            keras.utils.set_random_seed(seed)
            t0 = time.perf_counter()
            print(f"seed {seed}: {name}", flush=True)
            if name == "single-task":
                model = plain_model(size)
                model.fit(train["image"], {"logits": y_train["logits"]}, batch_size=args.batch_size,
                          epochs=args.epochs, verbose=2)
            elif name == "human auxiliary":
                model = plain_model(size, aux_classes)
                model.fit(train["image"], y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
            else:
                model = maxl_model(size, args.psi, args.order)
                model.fit({"image": train["image"], "label": train["label"]}, batch_size=args.batch_size,
                          epochs=args.epochs, verbose=2, shuffle=True)
            logits = model.predict(test["image"], batch_size=256, verbose=0)["logits"]
            acc = float(np.mean(np.argmax(logits, -1) == test["label"]))
            results[name].append(acc)
            print(f"  test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n### Primary test accuracy on kakapo ({size} px, {args.train_samples} train / {args.test_samples} "
          f"test images, {args.epochs} epochs, SGD 0.01, seeds {args.seeds}; MAXL psi={args.psi})\n")
    print("| method | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for name, accs in results.items():
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in accs) + f" | {np.mean(accs):.3f} |")
    print()
    print("\n".join(machine_lines()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tensorflow", "jax"))
    p.add_argument("--evidence", action="store_true", help="train single-task / human aux / MAXL and compare")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--psi", type=int, nargs="+", default=[5, 5])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps-per-round", type=int, default=5)
    p.add_argument("--order", choices=("first", "second"), default="first")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-samples", type=int, default=1000)
    p.add_argument("--test-samples", type=int, default=500)
    args = p.parse_args(argv)
    if args.evidence:
        evidence(args)
    else:
        step_times(args)


if __name__ == "__main__":
    main()
