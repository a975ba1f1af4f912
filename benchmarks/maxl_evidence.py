"""MAXL evidence: primary test accuracy of single-task, human auxiliary and MAXL, over seeds.

    python benchmarks/maxl_evidence.py            # both datasets, 3 seeds (about 15 min on a shared 2-core CPU)
    python benchmarks/maxl_evidence.py --smoke    # tiny sizes, one seed: checks the script runs (< 60 s)
    python benchmarks/maxl_evidence.py --datasets fashion_mnist --seeds 0 1 2 3 4

Two settings where the primary task is learnable in the budget and the
auxiliary labels are related to it:

* ``kakapo``: synthetic birds with NO background shortcut (``background_bias=0``
  in training and test), primary = kakapo vs other bird, human auxiliary =
  the species (0 kakapo, 1..4 others), ``psi = [1, 4]``.
* ``fashion_mnist``: primary = 3 coarse groups (tops: T-shirt/top, Pullover,
  Coat, Shirt, Dress; footwear: Sandal, Sneaker, Ankle boot; other: Trouser,
  Bag), human auxiliary = the 10 fine classes, ``psi = [5, 3, 2]``
  (:data:`keras_priors.maxl.FASHION_MNIST_HIERARCHY`), a small training subset.

Every method uses the same resnet_tiny backbone, the reference's focal loss
(gamma 2) on every head, the same optimizer (Adam, cosine decay to 0), epochs, batch size and data;
the human auxiliary head is a second ``Dense`` on the pooled features with
loss weight 1. MAXL is :class:`keras_priors.maxl.MAXLModel` with the
reference's generator optimizer (SGD 1e-3, weight decay 5e-4), entropy weight
0.2 and virtual learning rate 0.01. Before testing, every
method's batch-norm statistics are recomputed on its training set
(``recompute_batch_norm_statistics``). Accuracy is measured on the full test
split of each seed (kakapo: a fresh test set per seed; Fashion-MNIST: the
10,000 official test images).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_average, machine_lines, select_backend  # noqa: E402

select_backend()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_priors as kp  # noqa: E402
from keras_priors.maxl import FASHION_MNIST_HIERARCHY, MAXLModel, fashion_mnist_hierarchy, hierarchy_tables  # noqa: E402

METHODS = ("single-task", "human auxiliary", "MAXL")
DATASETS = ("kakapo", "fashion_mnist")

#: Default sizes (about 15 minutes on a shared 2-core CPU) and the --smoke sizes.
DEFAULTS = {
    "kakapo": {"train": 1000, "test": 2000, "epochs": 8, "image_size": 32},
    "fashion_mnist": {"train": 1000, "test": None, "epochs": 6, "image_size": 28},
}
SMOKE = {
    "kakapo": {"train": 96, "test": 64, "epochs": 1, "image_size": 16},
    "fashion_mnist": {"train": 96, "test": 64, "epochs": 1, "image_size": 28},
}


def _focal():
    # alpha=1: the reference's focal form -sum t (1-p)^2 log p, the loss MAXLModel uses.
    return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0, from_logits=True)


def load(dataset, sizes, seed):
    """``(train, test, psi)`` numpy dicts with ``image``, ``label``, ``aux_label``."""
    if dataset == "kakapo":
        train, test = kp.data.kakapo(("train", "test"), image_size=sizes["image_size"], seed=seed,
                                     num_samples={"train": sizes["train"], "test": sizes["test"]},
                                     background_bias=0.0, as_numpy=True)
        return train, test, [1, 4]
    _, _, psi = hierarchy_tables(FASHION_MNIST_HIERARCHY)
    num = {"train": sizes["train"]}
    if sizes["test"] is not None:
        num["test"] = sizes["test"]
    train, test = fashion_mnist_hierarchy(("train", "test"), num_samples=num, seed=seed)
    return train, test, psi


def build(method, input_shape, psi, args, total_steps):
    backbone = kp.zoo.get_spec("resnet_tiny").builder(input_shape)
    # Cosine decay to 0: the last epoch's weights are a settled model, not one Adam step among many.
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.learning_rate, total_steps))
    if method == "MAXL":
        model = MAXLModel(backbone, psi=psi, order=args.order, generator_update_every=args.generator_update_every)
        model.compile(optimizer=optimizer)
        return model
    inputs = keras.Input(input_shape, name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs)["P3"])
    outputs = {"logits": keras.layers.Dense(len(psi), name="logits")(pooled)}
    if method == "human auxiliary":
        outputs["aux_logits"] = keras.layers.Dense(sum(psi), name="aux_logits")(pooled)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer, loss={k: _focal() for k in outputs})
    return model


def recompute_batch_norm_statistics(network, images, batch_size):
    """Set every BatchNormalization's moving mean/variance to the average over ``images`` (in batches).

    After a few hundred steps the moving averages (momentum 0.99) still lag
    the weights: without this, a Fashion-MNIST model that fits its training
    set (accuracy 1.0 with batch statistics) scored 0.65 on that same
    training set in inference mode. The same recomputation is applied to
    every method (SWA's ``bn_update``).
    """
    bns = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for i, start in enumerate(range(0, len(images), batch_size)):
        for bn in bns:
            bn.momentum = i / (i + 1.0)  # running mean over the batches seen
        network(images[start:start + batch_size], training=True)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum


def train_and_test(method, train, test, psi, epochs, args):
    steps = epochs * -(-len(train["label"]) // args.batch_size)
    model = build(method, train["image"].shape[1:], psi, args, steps)
    if method == "MAXL":
        history = model.fit({"image": train["image"], "label": train["label"]}, batch_size=args.batch_size,
                            epochs=epochs, verbose=2, shuffle=True)
        extra = (f"; last epoch meta_loss {history.history['meta_loss'][-1]:.4f}, "
                 f"label_entropy {history.history['label_entropy'][-1]:.3f}")
    else:
        y = {"logits": np.eye(len(psi), dtype="float32")[train["label"]]}
        if method == "human auxiliary":
            y["aux_logits"] = np.eye(sum(psi), dtype="float32")[train["aux_label"]]
        model.fit(train["image"], y, batch_size=args.batch_size, epochs=epochs, verbose=2, shuffle=True)
        extra = ""
    recompute_batch_norm_statistics(model.network if method == "MAXL" else model, train["image"], 256)
    logits = model.predict(test["image"], batch_size=256, verbose=0)["logits"]
    return float(np.mean(np.argmax(logits, -1) == test["label"])), extra


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tensorflow", "jax"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes and one seed: a check that it runs")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--epochs", type=int, help="override both datasets' epochs")
    p.add_argument("--train-samples", type=int, help="override both datasets' training-set size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam with cosine decay to 0, the network of every method")
    p.add_argument("--order", choices=("first", "second"), default="first")
    p.add_argument("--generator-update-every", type=int, default=1)
    args = p.parse_args(argv)
    seeds = args.seeds or ([0] if args.smoke else [0, 1, 2])
    sizes = {d: dict((SMOKE if args.smoke else DEFAULTS)[d]) for d in args.datasets}
    for d in sizes:
        if args.epochs is not None:
            sizes[d]["epochs"] = args.epochs
        if args.train_samples is not None:
            sizes[d]["train"] = args.train_samples
    load0, t_start = load_average(), time.perf_counter()
    results = {(d, m): [] for d in args.datasets for m in args.methods}
    for d in args.datasets:
        for seed in seeds:
            train, test, psi = load(d, sizes[d], seed)
            for m in args.methods:
                keras.utils.set_random_seed(seed)
                t0 = time.perf_counter()
                print(f"[{d}] seed {seed}: {m} ({len(train['label'])} train images, {sizes[d]['epochs']} epochs)",
                      flush=True)
                acc, extra = train_and_test(m, train, test, psi, sizes[d]["epochs"], args)
                results[(d, m)].append(acc)
                print(f"  primary test accuracy {acc:.4f} on {len(test['label'])} images "
                      f"({time.perf_counter() - t0:.0f} s){extra}", flush=True)
    total = time.perf_counter() - t_start
    print("\n### MAXL evidence: primary-task test accuracy, mean +- std over seeds "
          f"{seeds}{' (SMOKE sizes: not evidence)' if args.smoke else ''}\n")
    print("| dataset | method | mean +- std | per seed |")
    print("|---|---|---|---|")
    for (d, m), accs in results.items():
        std = np.std(accs, ddof=1) if len(accs) > 1 else 0.0
        print(f"| {d} | {m} | {np.mean(accs):.3f} +- {std:.3f} | {', '.join(f'{a:.3f}' for a in accs)} |")
    print("\nSettings:")
    for d in args.datasets:
        s = sizes[d]
        if d == "kakapo":
            print(f"- kakapo: {s['image_size']} px, background_bias=0 (no shortcut), {s['train']} train / "
                  f"{s['test']} test images per seed, primary kakapo vs other, human aux = species, psi=[1, 4], "
                  f"{s['epochs']} epochs")
        else:
            test_n = "10000 (official)" if s["test"] is None else s["test"]
            print(f"- fashion_mnist: 28 px, {s['train']} train images (random subset per seed) / {test_n} test, "
                  "primary = tops/footwear/other, human aux = 10 fine classes, psi=[5, 3, 2], "
                  f"{s['epochs']} epochs")
    print(f"- every method: resnet_tiny, focal loss gamma 2 on each head, Adam {args.learning_rate} with cosine decay "
          f"to 0, "
          f"batch {args.batch_size}; MAXL order={args.order}, generator_update_every={args.generator_update_every}"
          f"{' (NOT the reference: generator updated every k-th batch)' if args.generator_update_every > 1 else ''}, "
          "generator SGD 1e-3 wd 5e-4, entropy weight 0.2, virtual lr 0.01")
    print("- before testing, batch-norm moving statistics are recomputed on the training set (every method)")
    print("- std is the sample standard deviation (ddof=1) over seeds; seed = data subset + initialisation")
    print(f"- total time {total:.0f} s")
    print("\n".join(machine_lines(load0)))
    return results


if __name__ == "__main__":
    main()
