"""Receptive field speed benchmark.

1. Theoretical RF analysis of keras.applications.ResNet152 (weights=None, built
   offline; only the analysis is timed, not the model build). Target: <= 1 s.
2. Effective RF of ResNet50 at 224 px on 16 images in ONE batched gradient call.

Usage:
    python benchmarks/rf_speed.py            # full run
    python benchmarks/rf_speed.py --quick    # ResNet50 RF analysis, ERF on 4 images at 128 px

Prints a Markdown table (with the machine it ran on) to paste into an issue.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_priors.receptive_field import (  # noqa: E402
    compute_receptive_fields,
    effective_receptive_field,
    feature_submodel,
    input_gradients,
)


def _best_of(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    devices = []
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        devices = [d.device_type for d in tf.config.list_physical_devices()]
    elif keras.backend.backend() == "jax":
        import jax

        devices = [d.platform for d in jax.devices()]
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"keras {keras.__version__} ({keras.backend.backend()}), devices {sorted(set(devices))}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models and inputs")
    args = parser.parse_args(argv)

    rows = []
    rf_name = "ResNet50" if args.quick else "ResNet152"
    t0 = time.perf_counter()
    big = getattr(keras.applications, rf_name)(weights=None, include_top=True, input_shape=(224, 224, 3))
    build_s = time.perf_counter() - t0
    rf_s, rfs = _best_of(lambda: compute_receptive_fields(big), 3)
    last = [r for r in rfs.values() if not r.is_global][-1]
    rows.append((f"RF analysis {rf_name} ({len(rfs)} layer outputs)", f"{rf_s:.3f} s",
                 f"target <= 1 s: {'OK' if rf_s <= 1 else 'SLOW'}; model build {build_s:.1f} s "
                 f"(not timed); {last.name}: RF {last.size[0]}, stride {last.stride[0]}, "
                 f"padding {last.padding[0]}"))
    big = None  # free it before the next model
    keras.backend.clear_session()

    n, px = (4, 128) if args.quick else (16, 224)
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(px, px, 3))
    x = np.random.default_rng(0).uniform(size=(n, px, px, 3)).astype("float32")
    layer = "conv5_block3_out"
    sub = feature_submodel(model, layer)
    unit = tuple(s // 2 for s in sub.output.shape[1:3])
    first_s, _ = _best_of(lambda: input_gradients(sub, x, unit), 1)  # includes tracing/compilation
    grad_s, _ = _best_of(lambda: input_gradients(sub, x, unit), 1 if args.quick else 2)
    total_s, res = _best_of(
        lambda: effective_receptive_field(model, layer, inputs=x, num_samples=n), 1)
    rows.append((f"ERF ResNet50 {layer}, {n} images x {px} px, one batched gradient call",
                 f"{grad_s:.2f} s", f"{grad_s / n * 1000:.0f} ms/image"))
    rows.append(("same, first call (includes tracing / jit compilation)", f"{first_s:.2f} s", ""))
    rows.append(("effective_receptive_field() end to end (RF analysis + sub-model + gradient)",
                 f"{total_s:.2f} s",
                 f"r50 = {res.radius_50:.2f}, r90 = {res.radius_90:.2f} of RF {res.receptive_field.size[0]}; "
                 f"std {res.std[0]:.1f} px (random init)"))

    print(f"\nMachine: {machine_info()}\n")
    print("| benchmark | time | notes |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
