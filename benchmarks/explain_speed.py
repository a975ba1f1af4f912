"""Speed of keras_priors.explain on one model, batch and machine, in one run.

    python benchmarks/explain_speed.py [--quick] [--backend tensorflow|jax|torch] [--jit-compile]
        [--model conv3|resnet_tiny] [--batch N] [--size N]

Times our CAM, L-CAM (inference), Grad-CAM, Grad-CAM++, Score-CAM, LayerCAM,
HiResCAM, XGradCAM, EigenCAM and Ablation-CAM (compiled, the default) against a
compiled forward pass of the same model on the same batch
(``tf.function(model)`` / ``jax.jit`` of ``model.stateless_call``: what
``model.predict`` runs per batch), ``model.predict`` itself and an eager
``model(x)``, and against tf-keras-vis's Grad-CAM / Grad-CAM++ / Score-CAM (same
layer, same targets, same Score-CAM batch size) when it is importable (TF only).
Explainers are built once, as tf-keras-vis's are; their first call (tracing and
compilation) is reported apart. Timings are interleaved in rounds (see
``benchmarks/_common.py``; fast methods several calls per round, Score-CAM one),
ratios are paired within a round, and the median over rounds is printed, with
the targets of issues #5 and #16 checked at the end (#16: each new explainer
within 1.2x Grad-CAM's time, Ablation-CAM apart: it runs the tail of the model
once per channel). About 2-3 minutes on 2 CPU cores. ``--model resnet_tiny``
explains the zoo's resnet_tiny classifier (its default layer, the feature map
its head reads) instead of the 3-conv model; tf-keras-vis then does not run.

One row times EigenCAM's own work (centring, Gram matrix, top eigenvector by
its certified power iteration, projection) on a given feature map, compiled;
with the forward pass it is the floor of our EigenCAM, printed as a ratio to
Grad-CAM after the targets.
Two profiling rows explain the Score-CAM ratio: the masked forward passes
alone (B x K images through a compiled forward, ``batch_size`` at a time), the
floor of any Score-CAM on this model, and ``model.predict`` on those same
images, which is what tf-keras-vis runs for them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    interleaved_rounds,
    load_average,
    machine_lines,
    markdown_table,
    paired_ratios,
    quantiles,
    select_backend,
)

select_backend(allowed=("tensorflow", "jax", "torch"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_priors.explain import CAM, LCAM, get_explainer  # noqa: E402
from keras_priors.explain._compile import compile_function  # noqa: E402

SLOW_BASE = "forward (compiled), timed with Score-CAM"
TKV = {"Grad-CAM": "tkv Grad-CAM", "Grad-CAM++": "tkv Grad-CAM++", "Score-CAM (all channels)": "tkv Score-CAM"}
# issue #5: (row, reference row, largest allowed time ratio). "A plain predict" is checked literally
# (model.predict on the batch) and, more strictly, against the compiled forward pass predict runs per batch.
TARGETS = [
    ("Grad-CAM", "tkv Grad-CAM", 0.5),
    ("Grad-CAM++", "tkv Grad-CAM++", 0.5),
    ("Score-CAM (all channels)", "tkv Score-CAM", 0.2),
    ("CAM", "model.predict", 1.2),
    ("L-CAM (inference)", "model.predict", 1.2),
    ("CAM", "forward (compiled)", 1.2),
    ("L-CAM (inference)", "forward (compiled)", 1.2),
    # issue #16: the new CAM family against Grad-CAM on the same batch (paired within the fast rounds).
    ("LayerCAM", "Grad-CAM", 1.2),
    ("HiResCAM", "Grad-CAM", 1.2),
    ("XGradCAM", "Grad-CAM", 1.2),
    ("EigenCAM", "Grad-CAM", 1.2),
]
#: Timed with the slow rows, so compared with Grad-CAM by the ratio of the medians (not paired), no target.
UNPAIRED = [("Ablation-CAM", "Grad-CAM"), ("Score-CAM (all channels)", "Grad-CAM")]
FLOOR = "profile: B*K masked forwards (compiled)"
EIGEN_FLOOR = "EigenCAM's projection alone, on given features (compiled)"


def build_model(size, classes):
    inp = keras.Input((size, size, 3))
    x = inp
    for i, f in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i < 2:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out)


def compiled_forward(model, jit_compile=False):
    """``x -> logits`` (numpy) as one compiled call: what ``predict`` runs per batch.

    Built like our explainers' functions (input converted to a tensor first, the batch dimension free on TF),
    so the comparison measures the explainers' extra work and nothing else.
    """
    if keras.backend.backend() == "jax":
        import jax

        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        return lambda x: np.asarray(fn([v.value for v in model.trainable_variables],
                                       [v.value for v in model.non_trainable_variables],
                                       keras.ops.convert_to_tensor(x)))
    if keras.backend.backend() == "torch":  # eager, as the explainers run on torch; no autograd graph kept
        import torch

        def forward(x):
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(keras.ops.convert_to_tensor(x), training=False))

        return forward
    import tensorflow as tf

    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), "float32")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], jit_compile=jit_compile)
    return lambda x: fn(x if tf.is_tensor(x) else tf.convert_to_tensor(x)).numpy()


def tf_keras_vis_steps(model, x, targets, score_cam_batch, channels, model_name="conv3"):
    """``{row: callable}`` for tf-keras-vis, or ``{row: "why not"}``."""
    names = list(TKV.values())
    if model_name != "conv3":
        return {n: "n/a (--model conv3 only)" for n in names}, None
    if keras.backend.backend() != "tensorflow":
        return {n: "n/a (TensorFlow backend only)" for n in names}, None
    try:
        import tf_keras_vis
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as e:  # noqa: BLE001
        return {n: f"import failed: {type(e).__name__}: {e}"[:90] for n in names}, None
    score = CategoricalScore(list(targets))
    steps = {}
    for name, make, kwargs in (
        ("tkv Grad-CAM", Gradcam, {}),
        ("tkv Grad-CAM++", GradcamPlusPlus, {}),
        ("tkv Score-CAM", Scorecam, {"max_N": channels, "batch_size": score_cam_batch}),
    ):
        try:
            ex = make(model, clone=True)
            steps[name] = (lambda ex=ex, kwargs=kwargs: ex(score, x, penultimate_layer="conv2", **kwargs))
        except Exception as e:  # noqa: BLE001
            steps[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:90]
    return steps, tf_keras_vis.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small input and batch, few rounds (a smoke test)")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                        help="torch: explainers and the forward run eagerly (nothing is compiled on torch)")
    parser.add_argument("--jit-compile", action="store_true", help="TF: compile our explainers with XLA")
    parser.add_argument("--rounds", type=int, default=None, help="rounds for the fast methods (default 10)")
    parser.add_argument("--calls", type=int, default=5, help="calls per round for the fast methods")
    parser.add_argument("--slow-rounds", type=int, default=None, help="rounds for Score-CAM (default 3)")
    parser.add_argument("--model", choices=["conv3", "resnet_tiny"], default="conv3",
                        help="the 3-conv model (default) or the zoo's resnet_tiny classifier")
    parser.add_argument("--batch", type=int, default=None, help="images per call (default 16, --quick 4)")
    parser.add_argument("--size", type=int, default=None, help="image size (default 64, --quick 32)")
    args = parser.parse_args()
    load_at_start = load_average()
    size, batch, rounds, slow_rounds = (32, 4, 3, 2) if args.quick else (64, 16, 10, 3)
    size, batch = args.size or size, args.batch or batch
    rounds, slow_rounds, calls = args.rounds or rounds, args.slow_rounds or slow_rounds, args.calls
    classes, channels, score_cam_batch = 10, 64, 64
    keras.utils.set_random_seed(0)
    if args.model == "resnet_tiny":
        import keras_priors as kp

        model = kp.zoo.logits_classifier(kp.zoo.build("resnet_tiny", num_classes=classes,
                                                      input_shape=(size, size, 3)))
        layer = None  # the feature map the CAM head reads
    else:
        model = build_model(size, classes)
        layer = "conv2"
    x = np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32")
    targets = np.arange(batch) % classes

    lcam = LCAM(model, variant="Fm", layer=layer, jit_compile=args.jit_compile)
    lcam.fit(x, targets, epochs=1, batch_size=batch, verbose=0)
    # CAM reads the layer its GAP + Dense head pools; the others explain `layer`.
    explainers = {"CAM": CAM(model, jit_compile=args.jit_compile), "L-CAM (inference)": lcam}
    for row, name, kwargs in (  # name: as `keras-priors explain --method`
        ("Grad-CAM", "gradcam", {}),
        ("Grad-CAM++", "gradcam++", {}),
        ("LayerCAM", "layercam", {}),
        ("HiResCAM", "hirescam", {}),
        ("XGradCAM", "xgradcam", {}),
        ("EigenCAM", "eigencam", {}),
        ("Ablation-CAM", "ablationcam", {}),
        ("Score-CAM (all channels)", "scorecam", {"batch_size": score_cam_batch}),
        ("Score-CAM (max_n=16)", "scorecam", {"batch_size": score_cam_batch, "max_n": 16}),
    ):
        explainers[row] = get_explainer(name)(model, layer=layer, jit_compile=args.jit_compile, **kwargs)
    channels = int(explainers["Grad-CAM"].target_layer.output.shape[-1])
    forward = compiled_forward(model)
    # Score-CAM's floor: the B x K masked images through the compiled forward, score_cam_batch at a time.
    masked = np.repeat(x, channels, axis=0) * np.random.default_rng(1).uniform(size=(batch * channels, size, size, 1)
                                                                              ).astype("float32")
    steps = {
        "forward (compiled)": lambda: forward(x),
        "model.predict": lambda: model.predict(x, batch_size=batch, verbose=0),
        "forward (eager model(x))": lambda: keras.ops.convert_to_numpy(model(x, training=False)),
    }
    steps.update({name: (lambda ex=ex: ex(x, targets)) for name, ex in explainers.items()})
    # EigenCAM's own work on a given feature map (centring, Gram matrix, power iteration, projection),
    # compiled: with the forward pass, the floor of our EigenCAM on this model (timed with the fast rows).
    eigen = explainers["EigenCAM"]
    feats = keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(eigen.runner.features(x)))
    projection = compile_function(lambda a: eigen.projection(a, power_only=True)[0], [])
    steps[EIGEN_FLOOR] = lambda: keras.ops.convert_to_numpy(projection(feats))
    # Chunks converted to tensors beforehand: only the forward passes are timed (the floor of any Score-CAM).
    masked_chunks = [keras.ops.convert_to_tensor(masked[i:i + score_cam_batch])
                     for i in range(0, len(masked), score_cam_batch)]
    steps["profile: B*K masked forwards (compiled)"] = lambda: [forward(c) for c in masked_chunks]
    tkv_steps, tkv_version = tf_keras_vis_steps(model, x, targets, score_cam_batch, channels, args.model)
    not_run = {k: v for k, v in tkv_steps.items() if isinstance(v, str)}
    steps.update({k: v for k, v in tkv_steps.items() if not isinstance(v, str)})
    if tkv_version:
        steps["profile: model.predict on B*K masked (tkv's part)"] = lambda: model.predict(
            masked, batch_size=score_cam_batch, verbose=0)

    # Two groups, each interleaved: the fast calls (tens of ms) several times per round so that one
    # measurement is long enough to survive a shared machine's noise; Score-CAM and the profiles once.
    slow = [k for k in steps if k.startswith(("Score-CAM", "Ablation-CAM", "profile", "tkv Score-CAM"))]
    slow_group = {SLOW_BASE: steps["forward (compiled)"], **{k: steps[k] for k in slow}}
    groups = [({k: v for k, v in steps.items() if k not in slow}, rounds, calls), (slow_group, slow_rounds, 1)]
    steps[SLOW_BASE] = steps["forward (compiled)"]
    per_round, first = {}, {}
    t0 = time.perf_counter()
    for group, n_rounds, n_calls in groups:
        print(f"Timing {len(group)} configurations, {n_rounds} rounds of {n_calls} call(s) each:", flush=True)
        p, f = interleaved_rounds(group, rounds=n_rounds, steps_per_round=n_calls, warmup=2)
        per_round.update(p)
        first.update(f)
    print(f"done in {time.perf_counter() - t0:.0f} s\n")

    rows = []
    for name in steps:
        base = SLOW_BASE if name in slow_group else "forward (compiled)"
        if name not in per_round:
            rows.append([name, first[name], "-", "-", "-", "-"])
            continue
        _, med, _ = quantiles(per_round[name])
        q = quantiles(paired_ratios(per_round, name, base))
        ref = TKV.get(name)
        if ref in per_round:
            r = quantiles(paired_ratios(per_round, name, ref))
            vs = f"{r[1]:.2f} ({r[0]:.2f}-{r[2]:.2f})"
        else:
            vs = not_run.get(ref, "-") if ref else "-"
        rows.append([name, f"{first[name] * 1e3:.0f}", f"{med * 1e3:.1f}", f"{q[1]:.2f} ({q[0]:.2f}-{q[2]:.2f})",
                     vs, f"{1.0 / r[1]:.1f}x" if ref in per_round else "-"])
    for name, why in not_run.items():
        rows.append([name, why, "-", "-", "-", "-"])

    print("## keras_priors.explain speed\n")
    print("\n".join(machine_lines(load_at_start)))
    how = ("run eagerly, as the forward rows (torch: nothing is compiled)" if keras.backend.backend() == "torch"
           else f"compiled{' with XLA' if args.jit_compile else ''} ({keras.backend.backend()})")
    print(f"- tf-keras-vis {tkv_version or 'not run'}; our explainers {how}, built once")
    described = (f"3 conv layers (16/32/64 ch) + GAP + Dense({classes})" if args.model == "conv3"
                 else f"zoo resnet_tiny classifier ({classes} classes)")
    where = f"on {'/'.join(explainers['Grad-CAM'].path)} ({channels} channels)"
    print(f"- model: {described}, input {size}x{size}x3, batch {batch}; "
          f"explainers {where}, Ablation-CAM 128 ablated maps per forward, "
          f"Score-CAM {score_cam_batch} masked images per "
          f"forward; median (25th-75th percentile) over interleaved rounds: {rounds} rounds of {calls} calls for "
          f"the fast rows, {slow_rounds} rounds of 1 call for Score-CAM and the profiles\n")
    print(markdown_table(["method", "first call (ms)", "time (ms)", "x compiled forward", "time / tf-keras-vis",
                          "throughput vs tf-keras-vis"], rows))
    print("\nTargets (issues #5, #16):\n")
    for name, ref, limit in TARGETS:
        if name in per_round and ref in per_round:
            r = quantiles(paired_ratios(per_round, name, ref))[1]
            print(f"- {name} / {ref}: {r:.2f} (target <= {limit}): {'met' if r <= limit else 'MISSED'}")
        else:
            print(f"- {name} / {ref}: not measured")
    for name, ref in UNPAIRED:
        if name in per_round and ref in per_round:
            r = quantiles(per_round[name])[1] / quantiles(per_round[ref])[1]
            print(f"- {name} / {ref}: {r:.1f} (ratio of medians, timed in different groups; no target)")
    if EIGEN_FLOOR in per_round:
        # Our EigenCAM runs the forward pass and this projection; paired within each round.
        floor = [(f + p) / g for f, p, g in zip(per_round["forward (compiled)"], per_round[EIGEN_FLOOR],
                                                per_round["Grad-CAM"])]
        print(f"- EigenCAM floor: the compiled forward plus EigenCAM's projection alone take "
              f"{quantiles(floor)[1]:.2f}x Grad-CAM's time (no resize, no normalisation; a call of its own): "
              f"our EigenCAM on this model and machine cannot be much below that ratio")
    if FLOOR in per_round and "tkv Score-CAM" in per_round:
        # Any Score-CAM has to run the B x K masked images through the model: with nothing else to do, it
        # could at best reach this multiple of tf-keras-vis's throughput on this model and machine.
        best = quantiles(paired_ratios(per_round, "tkv Score-CAM", FLOOR))[1]
        print(f"- Score-CAM ceiling: the B*K masked forward passes alone (pre-masked tensors, compiled forward) "
              f"take 1/{best:.1f} of tf-keras-vis's Score-CAM time: a Score-CAM that runs them can be at most "
              f"about {best:.1f}x faster than tf-keras-vis on this model and machine")


if __name__ == "__main__":
    main()
