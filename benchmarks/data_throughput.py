"""Data throughput: kakapo generation rate and tf.data pipeline speed with/without augmentation.

Usage: python benchmarks/data_throughput.py [--quick]

Prints a Markdown table (paste it into an issue) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def _best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from keras_priors.data import make_kakapo, make_pipeline

    n_gen = 2000 if args.quick else 10000
    n_pipe = 1000 if args.quick else 4000
    repeats = 1 if args.quick else 3
    size = 64

    make_kakapo(64, image_size=size)  # warm-up
    t_gen = _best_of(lambda: make_kakapo(n_gen, image_size=size, seed=0), repeats)
    rate = n_gen / t_gen

    data = make_kakapo(n_pipe, image_size=size, seed=1)

    def epoch(augment):
        ds = make_pipeline(data, batch_size=64, shuffle=True, augment=augment, seed=0)
        for _ in ds:
            pass

    rows = [
        ("kakapo generation (numpy)", n_gen, t_gen, rate, 1.0),
        None,
    ]
    pipe = {}
    for name, augment in (("plain", None), ("flip", ("flip",)), ("flip + crop + color", True)):
        epoch(augment)  # warm-up (tracing)
        t = _best_of(lambda a=augment: epoch(a), repeats)
        pipe[name] = n_pipe / t
        rows.append((f"pipeline: {name}", n_pipe, t, n_pipe / t, None))

    print("## keras-priors data throughput\n")
    print(f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"- python {platform.python_version()}, numpy {np.__version__}, tensorflow {tf.__version__}, "
          f"keras {keras.__version__}")
    print(f"- images {size}x{size}, batch 64, best of {repeats}\n")
    print("| what | images | seconds | images/s | ratio to plain |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        if row is None:
            continue
        what, n, t, r, _ = row
        ratio = "" if what.startswith("kakapo") else f"{r / pipe['plain']:.2f}"
        print(f"| {what} | {n} | {t:.2f} | {r:,.0f} | {ratio} |")
    print(f"\nkakapo: 10,000 images at {size}x{size} take about {10000 / rate:.1f} s (target: <= 5 s on 2 cores).")


if __name__ == "__main__":
    main()
