r"""GPU training throughput of ResNet-50 at 224 px, JAX, bf16, without and with the CAM prior (issue 16 item 6).

    python benchmarks/gpu_throughput.py [--batch-size 256] [--rounds 10] [--steps 5]

Model: the zoo entry ``resnet50`` (``keras_priors.zoo``: ``keras.applications.ResNet50``
backbone built with ``weights=None``, i.e. random weights and no download,
plus the zoo's CAM head), 2 classes, at 224x224, under Keras'
``mixed_bfloat16`` policy on the JAX backend; once with no prior and once
with ``CAMSuppression``. Each configuration trains with ``train_on_batch`` on
one fixed synthetic kakapo batch already on the device (the input pipeline is
not timed), timed in interleaved rounds after a warm-up; the prior's cost is
the median over rounds of the within-round step-time ratio (as
``benchmarks/train_throughput.py``, whose timing code this reuses).

Targets from the issue: >= 3000 images/s without the prior, and the prior
costing <= 1.05x step time. The table says whether each was met.

Without a GPU visible to JAX (``jax`` not installed, or ``jax.devices()``
has no GPU) the script prints that no GPU was found and exits 0 without
measuring anything: it never reports CPU numbers as GPU numbers.

On this project's GPU machine (Python 3.12, JAX, no TensorFlow, no package
index; ``tests/benchmarks/test_gpu_throughput.py`` checks the path runs
without TensorFlow), Keras and its two dependencies missing there travel as
wheels. Once, in the repository root here::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 namex optree

then one device ``run`` with ``carry=[".whl"]``::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && python3 benchmarks/gpu_throughput.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

TARGET_IMAGES_PER_S = 3000.0
TARGET_PRIOR_COST = 1.05


def gpu_devices():
    """(GPU devices JAX sees, None) or ([], why there is none); imports nothing but jax."""
    try:
        import jax
    except ImportError as e:
        return [], f"jax is not installed ({e})"
    try:
        devices = jax.devices()
    except RuntimeError as e:  # a broken CUDA install: no usable backend
        return [], f"jax.devices() failed ({str(e).splitlines()[0]})"
    gpus = [d for d in devices if d.platform == "gpu"]
    if not gpus:
        return [], f"jax.devices() lists only {', '.join(sorted({d.platform for d in devices}))}"
    return gpus, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256, help="images per step (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=224, help="input side in px (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per config and round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per config (default: %(default)s)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="without a GPU, run anyway on CPU to check the code path: rows are labelled cpu and "
                             "the targets are not evaluated (default: off)")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.image_size, args.rounds, args.steps, args.warmup) < 1:
        parser.error("Expected --batch-size, --image-size, --rounds, --steps and --warmup >= 1.")

    gpus, why = gpu_devices()
    if not gpus and not args.allow_cpu:
        print(f"No GPU found: {why}. The ResNet-50 224 px bf16 throughput benchmark needs a GPU visible to JAX; "
              "nothing was measured.", flush=True)
        return 0

    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        print(f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} ignored: this benchmark runs on JAX.", flush=True)
    os.environ["KERAS_BACKEND"] = "jax"
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.path.insert(0, os.path.dirname(here))
    import _common
    import keras
    import train_throughput as tt

    load_at_start = _common.load_average()
    t_start = time.perf_counter()
    keras.utils.set_random_seed(0)
    size = args.image_size
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        configs = {f"resnet50 / {p}": ("resnet50", p, size) for p in ("none", "CAMSuppression")}
        batch = {size: tt.fixed_batch(args.batch_size, size)}
        per_round, first, params = tt.time_group(f"resnet50 at {size} px, mixed_bfloat16", configs, batch,
                                                 args.rounds, args.steps, args.warmup)
    finally:
        keras.config.set_dtype_policy(previous)
    device = "gpu" if gpus else "cpu (code-path check, not the GPU benchmark)"
    rows = tt.rows_for(configs, per_round, first, params, args.batch_size, device)

    base, prior = "resnet50 / none", "resnet50 / CAMSuppression"
    print(f"\n## keras-priors: ResNet-50 training throughput on {'GPU' if gpus else 'CPU (code-path check)'}, JAX, "
          "mixed_bfloat16\n")
    for line in _common.machine_lines(load_at_start):
        print(line)
    print(f"- GPU: {', '.join(f'{d.id} {d.device_kind}' for d in gpus)}" if gpus else
          f"- no GPU ({why}): --allow-cpu code-path check on CPU; these are not GPU numbers")
    print(f"- model: zoo 'resnet50' (keras.applications.ResNet50 backbone, weights=None) + CAM head, 2 classes, "
          f"{size}x{size}; `train_on_batch` on one fixed synthetic kakapo batch of {args.batch_size} on the device, "
          "Adam; input pipeline not timed")
    print(f"- timing: {args.warmup} warm-up steps per config, then {args.rounds} interleaved rounds x {args.steps} "
          "steps; prior cost = median over rounds of (step time with CAMSuppression / without, same round)")
    print(f"- total wall time {time.perf_counter() - t_start:.0f} s\n")
    header = ["model", "px", "priors", "device", "images/s (median)", "images/s IQR", "ms/step",
              "throughput vs no prior", "step-time ratio IQR", "params", "first step s"]
    print(_common.markdown_table(header, rows))
    if not gpus:
        print("\nTargets: not evaluated (no GPU)")
    elif base in per_round and prior in per_round:
        imgs = args.batch_size / _common.quantiles(per_round[base])[1]
        cost = _common.quantiles(_common.paired_ratios(per_round, prior, base))[1]
        print(f"\nTargets: >= {TARGET_IMAGES_PER_S:.0f} images/s without the prior: {imgs:,.0f} "
              f"({'met' if imgs >= TARGET_IMAGES_PER_S else 'NOT met'}); CAMSuppression step-time cost "
              f"<= {TARGET_PRIOR_COST:.2f}x: {cost:.3f}x ({'met' if cost <= TARGET_PRIOR_COST else 'NOT met'})")
    else:
        print("\nTargets: not evaluated (a configuration failed its warm-up; see the table)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
