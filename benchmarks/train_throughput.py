"""Training throughput (images/s) of zoo models without and with priors, in one run.

    python benchmarks/train_throughput.py [--quick] [--backend jax]
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --gpu-resnet50   # on a GPU machine

Rows: ``resnet_tiny`` and ``resnet_small`` at 64x64, batch 64, each with no
prior, ``CAMSuppression`` and ``CAMSuppression + MaskDecoder``. Every model
trains with ``train_on_batch`` on one fixed kakapo batch already on the device
(the input pipeline is not timed: see ``benchmarks/data_throughput.py``); the
configurations are timed in interleaved rounds after a warm-up and the ratio to
the same backbone without priors is the median of the ratios measured within
each round (see ``benchmarks/_common.py``).

``--gpu-resnet50`` adds ResNet-50 (``keras.applications``, random weights) at
224x224 with ``mixed_bfloat16``, without and with ``CAMSuppression``. It needs
a GPU visible to the Keras backend (use JAX where TensorFlow is not
installed); without one it stops with a message and prints no number.
``--allow-cpu`` runs those rows anyway (labelled with the device they ran on),
which only checks the code path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

_common.select_backend()

import keras  # noqa: E402

import keras_priors as kp  # noqa: E402
from keras_priors.data import make_kakapo  # noqa: E402

PRIOR_SETS = {
    "none": lambda: [],
    "CAMSuppression": lambda: [kp.priors.CAMSuppression(classes=[0], mask="object_mask", weight=1.0)],
    "CAMSuppression + MaskDecoder": lambda: [
        kp.priors.CAMSuppression(classes=[0], mask="object_mask", weight=1.0),
        kp.priors.MaskDecoder(target="part_mask", weight=0.5),
    ],
}
KEYS = ("image", "label", "object_mask", "part_mask", "part_box")


def fixed_batch(batch_size, image_size, seed=0):
    data = make_kakapo(batch_size, image_size=image_size, seed=seed)
    return {k: keras.ops.convert_to_tensor(data[k]) for k in KEYS}


def build(model_name, prior_set, image_size, num_classes=2):
    model = kp.zoo.build(model_name, num_classes=num_classes, input_shape=(image_size, image_size, 3),
                         priors=PRIOR_SETS[prior_set]())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def time_group(label, configs, batch, rounds, steps_per_round, warmup):
    """Build and time ``configs`` = ``{row name: (model name, prior set, image size)}`` in interleaved rounds."""
    models = {}
    for name, (model_name, prior_set, size) in configs.items():
        t0 = time.perf_counter()
        models[name] = build(model_name, prior_set, size)
        print(f"built {name}: {models[name].network.count_params():,} parameters "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
    steps = {name: (lambda m=m, b=batch[configs[name][2]]: m.train_on_batch(b)) for name, m in models.items()}
    print(f"timing {label}: {rounds} rounds x {steps_per_round} steps per configuration", flush=True)
    per_round, first = _common.interleaved_rounds(steps, rounds, steps_per_round, warmup=warmup)
    params = {name: m.network.count_params() for name, m in models.items()}
    return per_round, first, params


def rows_for(configs, per_round, first, params, batch_size, device):
    rows = []
    for name, (model_name, prior_set, size) in configs.items():
        base = next(n for n, c in configs.items() if c[0] == model_name and c[1] == "none" and c[2] == size)
        if name not in per_round:  # its warm-up raised: first[name] holds the error
            rows.append([model_name, f"{size}", prior_set, device, first[name]] + ["-"] * 4
                        + [f"{params[name]:,}", "-"])
            continue
        q1, med, q3 = _common.quantiles(per_round[name])
        if base not in per_round:
            ratio, ratio_spread = "- (no baseline)", "-"
        elif name == base:
            ratio, ratio_spread = "1.00", "-"
        else:
            r1, r, r3 = _common.quantiles(_common.paired_ratios(per_round, name, base))
            ratio, ratio_spread = f"{1 / r:.2f}", f"{r1:.2f}-{r3:.2f}"
        rows.append([model_name, f"{size}", prior_set, device, f"{batch_size / med:,.0f}",
                     f"{batch_size / q3:,.0f}-{batch_size / q1:,.0f}", f"{med * 1e3:.0f}", ratio,
                     ratio_spread, f"{params[name]:,}", f"{first[name]:.1f}"])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="resnet_tiny only, few rounds (a smoke run)")
    parser.add_argument("--backend", choices=_common.BACKENDS, help="Keras backend (sets KERAS_BACKEND)")
    parser.add_argument("--models", help="comma-separated tiny zoo models at 64 px (default resnet_tiny,resnet_small; "
                                         "quick resnet_tiny; '' for none)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 12, quick 4)")
    parser.add_argument("--steps", type=int, help="timed steps per configuration and round (default 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gpu-resnet50", action="store_true",
                        help="add ResNet-50 at 224 px, mixed_bfloat16, without/with CAMSuppression (needs a GPU)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="with --gpu-resnet50: run the ResNet-50 rows even without a GPU (code-path check only)")
    parser.add_argument("--resnet50-size", type=int, default=224)
    parser.add_argument("--resnet50-batch", type=int, default=64)
    args = parser.parse_args(argv)
    rounds = args.rounds or (4 if args.quick else 12)
    steps_per_round = args.steps or 1
    warmup = 1 if args.quick else 2
    if min(rounds, steps_per_round, args.batch_size, args.resnet50_batch) < 1:
        parser.error("Expected --rounds, --steps, --batch-size and --resnet50-batch >= 1.")
    if args.models is None:
        tiny_models = ["resnet_tiny"] if args.quick else ["resnet_tiny", "resnet_small"]
    else:
        tiny_models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in tiny_models:
        kp.zoo.registry.get_spec(m)  # unknown names fail with the closest ones listed

    gpu = _common.has_gpu()
    device = "gpu" if gpu else "cpu"
    if args.gpu_resnet50 and not gpu and not args.allow_cpu:
        print(f"--gpu-resnet50: no GPU is visible to the {keras.backend.backend()} backend "
              f"(devices: {', '.join(_common.accelerators())}). The ResNet-50 224 px bf16 rows need one; "
              "nothing was measured. On a GPU machine run e.g. "
              "`KERAS_BACKEND=jax python benchmarks/train_throughput.py --gpu-resnet50` "
              "(or add --allow-cpu to check the code path on CPU).", file=sys.stderr)
        return 2

    load_at_start = _common.load_average()
    t_start = time.perf_counter()
    keras.utils.set_random_seed(0)
    rows = []
    if tiny_models:
        configs = {f"{m} / {p}": (m, p, 64) for m in tiny_models for p in PRIOR_SETS}
        batch = {64: fixed_batch(args.batch_size, 64)}
        per_round, first, params = time_group("tiny models at 64 px", configs, batch, rounds, steps_per_round, warmup)
        rows += rows_for(configs, per_round, first, params, args.batch_size, device)

    if args.gpu_resnet50:
        size = args.resnet50_size
        previous = keras.config.dtype_policy().name
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            configs = {f"resnet50 / {p}": ("resnet50", p, size) for p in ("none", "CAMSuppression")}
            batch = {size: fixed_batch(args.resnet50_batch, size)}
            per_round, first, params = time_group(f"resnet50 at {size} px, mixed_bfloat16", configs, batch,
                                                  rounds, steps_per_round, warmup)
        finally:
            keras.config.set_dtype_policy(previous)
        r50_rows = rows_for(configs, per_round, first, params, args.resnet50_batch, device)
        for row in r50_rows:
            row[0] = "resnet50 (bf16)"
        rows += r50_rows

    header = ["model", "px", "priors", "device", "images/s (median)", "images/s IQR" if rounds >= 4 else
              "images/s min-max", "ms/step", "throughput vs no prior", "step-time ratio IQR" if rounds >= 4 else
              "step-time ratio min-max", "params", "first step s"]
    print("\n## keras-priors: training throughput without and with priors\n")
    for line in _common.machine_lines(load_at_start):
        print(line)
    print(f"- `train_on_batch` on one fixed kakapo batch on the device (batch {args.batch_size}"
          + (f"; ResNet-50 batch {args.resnet50_batch}" if args.gpu_resnet50 else "")
          + "), Adam, 2 classes; the input pipeline is not timed")
    print(f"- timing: {warmup} warm-up step(s) per config, then {rounds} interleaved rounds x {steps_per_round} "
          "steps; throughput ratio = 1 / median over rounds of (step time with priors / without, same round)")
    if not args.gpu_resnet50:
        print("- ResNet-50 224 px bf16 rows: not run (add --gpu-resnet50 on a GPU machine)")
    print(f"- total wall time {time.perf_counter() - t_start:.0f} s\n")
    print(_common.markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
