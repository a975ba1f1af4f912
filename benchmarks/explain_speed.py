"""Speed of keras_priors.explain on one model, batch and machine, in one run.

    python benchmarks/explain_speed.py [--quick]

Times our CAM, Grad-CAM, Grad-CAM++, Score-CAM and L-CAM (inference) against a
plain ``model.predict``-style forward on the same batch, and tf-keras-vis's
Grad-CAM / Grad-CAM++ / Score-CAM when it is importable and works with the Keras 3
model (otherwise the table says why). Prints a Markdown table with ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_priors.explain import CAM, LCAM, GradCAM, GradCAMPlusPlus, ScoreCAM  # noqa: E402


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


def timeit(fn, repeats):
    fn()  # warm-up (tracing / compilation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def tf_keras_vis_rows(model, x, targets, repeats, score_cam_channels):
    rows = {}
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as e:  # noqa: BLE001
        msg = f"import failed: {type(e).__name__}: {e}"[:90]
        return {k: msg for k in ("Grad-CAM", "Grad-CAM++", "Score-CAM")}
    score = CategoricalScore(list(targets))
    makers = {
        "Grad-CAM": lambda: Gradcam(model, clone=True),
        "Grad-CAM++": lambda: GradcamPlusPlus(model, clone=True),
        "Score-CAM": lambda: Scorecam(model, clone=True),
    }
    for name, make in makers.items():
        try:
            ex = make()
            kwargs = {"penultimate_layer": "conv2"}
            if name == "Score-CAM":
                kwargs["max_N"] = score_cam_channels
            rows[name] = timeit(lambda: ex(score, x, **kwargs), repeats)
        except Exception as e:  # noqa: BLE001
            rows[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:90]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batch, few repeats")
    args = parser.parse_args()
    size, batch, repeats = (32, 4, 3) if args.quick else (64, 16, 5)
    classes, channels = 10, 64
    keras.utils.set_random_seed(0)
    model = build_model(size, classes)
    x = np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32")
    targets = np.arange(batch) % classes

    lcam = LCAM(model, variant="Fm", layer="conv2")
    lcam.fit(x, targets, epochs=1, batch_size=batch, verbose=0)
    ours = {
        "forward (model(x))": lambda: keras.ops.convert_to_numpy(model(x, training=False)),
        "CAM": lambda: CAM(model)(x, targets),
        "L-CAM (inference)": lambda: lcam(x, targets),
        "Grad-CAM": lambda: GradCAM(model, layer="conv2")(x, targets),
        "Grad-CAM++": lambda: GradCAMPlusPlus(model, layer="conv2")(x, targets),
        "Score-CAM (all 64 channels)": lambda: ScoreCAM(model, layer="conv2", batch_size=64)(x, targets),
        "Score-CAM (max_n=16)": lambda: ScoreCAM(model, layer="conv2", batch_size=64, max_n=16)(x, targets),
    }
    times = {name: timeit(fn, repeats) for name, fn in ours.items()}
    base = times["forward (model(x))"]
    theirs = {}
    if keras.backend.backend() == "tensorflow":
        theirs = tf_keras_vis_rows(model, x, targets, repeats, channels)
    else:
        theirs = {k: "n/a (TensorFlow backend only)" for k in ("Grad-CAM", "Grad-CAM++", "Score-CAM")}
    try:
        import tf_keras_vis

        tkv_version = tf_keras_vis.__version__
    except Exception:  # noqa: BLE001
        tkv_version = "not importable"

    print(f"\nMachine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; keras {keras.__version__}, backend {keras.backend.backend()}; "
          f"tf-keras-vis {tkv_version}")
    print(f"Model: 3 conv layers (16/32/64 ch) + GAP + Dense({classes}), input {size}x{size}x3, batch {batch}, "
          f"median of {repeats} runs after a warm-up.\n")
    print("| method | keras_priors (ms) | x forward | tf-keras-vis (ms) | ours / tf-keras-vis |")
    print("|---|---:|---:|---:|---:|")
    for name, t in times.items():
        key = name.split(" (")[0]
        other = theirs.get(key) if name in ("Grad-CAM", "Grad-CAM++", "Score-CAM (all 64 channels)") else None
        if isinstance(other, float):
            o, r = f"{other * 1e3:.1f}", f"{t / other:.2f}"
        elif other is None:
            o, r = "-", "-"
        else:
            o, r = other, "-"
        print(f"| {name} | {t * 1e3:.1f} | {t / base:.1f} | {o} | {r} |")


if __name__ == "__main__":
    main()
