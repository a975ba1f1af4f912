"""MAXL step time: second- and first-order steps vs a single-task step, measured in one run.

    python benchmarks/maxl_step.py                  # step-time table (interleaved rounds, medians)
    python benchmarks/maxl_step.py --backend jax
    python benchmarks/maxl_step.py --every 1 2 4    # generator_update_every values for the first-order rows

The single-task step is a plain ``keras.Model`` (the same backbone and
primary head, focal loss, SGD) trained with ``train_on_batch``; the MAXL steps
are ``MAXLModel.train_on_batch`` (real step + generator meta-step), each one
compiled function (``tf.function`` / ``jax.jit`` by Keras). Ratios are paired
within each round, medians over rounds. A second table times the pieces a
step is made of (network and generator forward / forward+backward, each
compiled on its own), so the ratios can be read as pass counts.

Primary-task accuracy (single-task vs human auxiliary vs MAXL) is
``benchmarks/maxl_evidence.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import interleaved_rounds, load_average, machine_lines, markdown_table, select_backend  # noqa: E402

select_backend()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_priors as kp  # noqa: E402
from keras_priors.maxl import LabelGenerator, MAXLModel  # noqa: E402
from keras_priors.maxl import _autodiff  # noqa: E402
from keras_priors.maxl.losses import focal_cross_entropy  # noqa: E402


def _focal():
    # alpha=1: the reference's focal form -sum t (1-p)^2 log p, the loss MAXLModel uses.
    return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0, from_logits=True)


def plain_model(image_size, num_classes=2, lr=0.01):
    """Backbone + primary head: the single-task baseline."""
    backbone = kp.zoo.get_spec("resnet_tiny").builder((image_size, image_size, 3))
    inputs = keras.Input((image_size, image_size, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs)["P3"])
    outputs = {"logits": keras.layers.Dense(num_classes, name="logits")(pooled)}
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss={"logits": _focal()})
    return model


def maxl_model(image_size, psi, order, lr=0.01, **kwargs):
    stem_strides = kwargs.pop("stem_strides", 2)
    backbone = kp.zoo.get_spec("resnet_tiny").builder((image_size, image_size, 3))
    generator = LabelGenerator(psi, stem_strides=stem_strides, name="label_generator")
    model = MAXLModel(backbone, psi=psi, order=order, virtual_learning_rate=lr, generator=generator, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    return model


def _compiled(fn):
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn)


def _blocking(fn):
    def run():
        out = fn()
        keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), out)
    return run


def component_steps(model, images, labels):
    """Compiled forward and forward+backward passes of the network and the generator alone."""
    net, gen = model.network, model.generator
    net_tv = [v.value for v in net.trainable_variables]
    net_ntv = [v.value for v in net.non_trainable_variables]
    gen_tv = [v.value for v in gen.trainable_variables]
    gen_ntv = [v.value for v in gen.non_trainable_variables]
    x = keras.ops.convert_to_tensor(images)
    y = keras.ops.convert_to_tensor(labels)
    q = keras.ops.convert_to_tensor(np.full((len(images), model.num_aux_classes), 1.0 / model.num_aux_classes,
                                            "float32"))

    def net_loss(params):
        out, _ = net.stateless_call(params, net_ntv, x, training=True)
        l_pri = model._primary_loss(y, out["logits"])
        return l_pri + focal_cross_entropy(q, keras.ops.softmax(out["aux_logits"])), None

    def gen_loss(params):
        out, _ = gen.stateless_call(params, gen_ntv, x, y, training=True)
        return keras.ops.sum(out * q), None

    return {
        "network forward": _blocking(_compiled(lambda: net_loss(net_tv)[0])),
        "network forward+backward": _blocking(_compiled(lambda: _autodiff.value_and_grad(net_loss)(net_tv)[1])),
        "generator forward": _blocking(_compiled(lambda: gen_loss(gen_tv)[0])),
        "generator forward+backward": _blocking(_compiled(lambda: _autodiff.value_and_grad(gen_loss)(gen_tv)[1])),
    }


def step_times(args):
    data = kp.data.make_kakapo(args.batch_size, image_size=args.image_size, seed=0)
    x, y = data["image"], data["label"]
    batch = {"image": x, "label": y}
    onehot = {"logits": np.eye(2, dtype="float32")[y]}
    single = plain_model(args.image_size)
    steps = {"single-task": lambda: single.train_on_batch(x, onehot)}
    configs = {}
    for k in args.every:
        configs[f"maxl first-order, forward difference, k={k}"] = dict(order="first", generator_update_every=k)
    configs["maxl first-order, central difference (reference), k=1"] = dict(order="first",
                                                                           finite_difference="central")
    configs["maxl first-order, k=1, full-resolution generator"] = dict(order="first", stem_strides=1)
    configs["maxl second-order, k=1"] = dict(order="second")
    models = {}
    for name, kwargs in configs.items():
        models[name] = maxl_model(args.image_size, args.psi, **kwargs)
        steps[name] = (lambda m: lambda: m.train_on_batch(batch))(models[name])
    first_k1 = models[f"maxl first-order, forward difference, k={args.every[0]}"]
    steps.update(component_steps(first_k1, x, y))
    load0 = load_average()
    per_round, first_step = interleaved_rounds(steps, args.rounds, args.steps_per_round, warmup=3)
    base = per_round["single-task"]
    print(f"\n### MAXL step time: resnet_tiny, {args.image_size} px, batch {args.batch_size}, psi={args.psi}, "
          f"{keras.backend.backend()}\n")
    print("k = generator_update_every (k > 1 is NOT the reference algorithm: the generator is updated on every "
          "k-th batch only). Default generator: stem_strides=2.\n")
    rows = []
    for name in steps:
        if name not in per_round:
            rows.append([name, "-", "-", first_step[name]])
            continue
        times = per_round[name]
        ratio = statistics.median(t / b for t, b in zip(times, base))
        first = first_step[name]
        rows.append([name, f"{1000 * statistics.median(times):.1f}", f"{ratio:.2f}x",
                     f"{first:.1f}" if isinstance(first, float) else first])
    print(markdown_table(["step", "median ms", "ratio to single-task (median of paired rounds)", "first call s"],
                         rows))
    parts = ("network forward+backward", "network forward", "generator forward+backward")
    if all(p in per_round for p in parts):
        # What the first-order, forward-difference step runs besides one single-task step's work: a second
        # network forward+backward (the primary loss at the virtual weights), a network forward (theta + eps d)
        # and the generator's forward+backward. Timed apart, each with its own call overhead, so their sum
        # over-counts what one compiled step spends on them.
        fb, fwd, gen = (per_round[p] for p in parts)
        two = statistics.median(2 * a / b for a, b in zip(fb, base))
        total = statistics.median((2 * a + f + g) / b for a, f, g, b in zip(fb, fwd, gen, base))
        print(f"\nPasses of the k=1 first-order step, timed apart: 2 x network forward+backward = {two:.2f}x the "
              f"single-task step; with the extra network forward and the generator's forward+backward, {total:.2f}x.")
    print()
    print("\n".join(machine_lines(load0)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tensorflow", "jax"))
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--psi", type=int, nargs="+", default=[5, 5])
    p.add_argument("--every", type=int, nargs="+", default=[1, 2, 4],
                   help="generator_update_every values for the first-order rows (first one also times the pieces)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps-per-round", type=int, default=4,
                   help="a multiple of every k, so each round holds the same share of generator updates")
    args = p.parse_args(argv)
    step_times(args)


if __name__ == "__main__":
    main()
