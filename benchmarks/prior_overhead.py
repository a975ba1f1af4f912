"""Training-step overhead of each prior: the same zoo model with and without it, in one run.

    python benchmarks/prior_overhead.py [--quick] [--backend jax] [--configs plain,cam_suppression] [--jit-compile]

Builds ``keras_priors.zoo.build("resnet_tiny", ...)`` once per configuration
(no prior, then one prior each), trains each on the same fixed kakapo batch
(64x64, batch 64) with ``model.train_on_batch``, and times the steps in
interleaved rounds after a warm-up (see ``benchmarks/_common.py``). Prints a
Markdown table: median ms/step, spread, the ratio to the plain model (the
median over rounds of the ratio measured within each round) and whether it
meets the target. ``--breakdown`` adds the forward pass alone (compiled
``predict_on_batch``, inference mode) per configuration, to see whether an
overhead sits in the network or in the loss/backward part. ``--configs`` also
accepts investigation variants (a lighter mask decoder, CAM suppression
without its training metric).
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

IMAGE_SIZE = 64
BATCH = 64
SPECIES = 4  # aux_label in 0..4


def configurations():
    """``{name: (factory of the prior list, target ratio or None, note)}``; factories give fresh priors."""
    p = kp.priors
    return {
        "plain": (lambda: [], None, "no prior"),
        "cam_suppression": (lambda: [p.CAMSuppression(classes=[0], mask="object_mask", weight=1.0)], 1.05,
                            "CAMSuppression(classes=[0])"),
        "mask_decoder": (lambda: [p.MaskDecoder(target="part_mask", weight=0.5)], 1.3,
                         "MaskDecoder(part_mask)"),
        "confidence_penalty": (lambda: [p.ConfidencePenalty(beta=0.1)], 1.02, "ConfidencePenalty(0.1)"),
        "label_smoothing": (lambda: [p.LabelSmoothing(0.1)], 1.02, "LabelSmoothing(0.1)"),
        "feature_contraction": (lambda: [p.FeatureContraction(weight=1e-3)], 1.02, "FeatureContraction(1e-3)"),
        "auxiliary": (lambda: [p.Auxiliary(num_classes=SPECIES + 1, exclude_classes=[0])], None,
                      "Auxiliary(5 classes, exclude [0])"),
        "spatial_attention": (lambda: [p.SpatialAttention(target="part_mask")], None, "SpatialAttention(part_mask)"),
        "dual_input": (lambda: [p.DualInput(box="part_box")], None, "DualInput(part_box, shared): oracle box"),
        "dual_input_predicted": (lambda: [p.DualInput(box_source="predicted", target="part_mask")], None,
                                 "DualInput(box='predicted'): mask decoder -> MaskToBox -> crop"),
        "background_swap": (lambda: [p.BackgroundSwap(mask="object_mask")], 1.05,
                            "BackgroundSwap(object_mask): one gather and a composite per batch"),
        "input_gradient": (lambda: [p.InputGradient(mask="object_mask", weight=1.0)], 2.5,
                           "InputGradient (RRR): double backprop to the image"),
        "grad_cam_penalty": (lambda: [p.GradCAMPenalty(mask="object_mask")], 2.5,
                             "GradCAMPenalty (RRR-G) at the head's level (P3)"),
        "grad_cam_penalty_p2": (lambda: [p.GradCAMPenalty(mask="object_mask", level="P2")], 2.5,
                                "GradCAMPenalty(level='P2')"),
        "energy_cam": (lambda: [p.Energy(attribution="cam")], 1.05, "Energy(attribution='cam')"),
        "energy_grad_cam": (lambda: [p.Energy(attribution="grad_cam", level="P2")], 2.5,
                            "Energy(attribution='grad_cam', level='P2')"),
    }


def extra_configurations():
    """Variants for investigating an overhead; run only when named in ``--configs``."""
    p = kp.priors
    return {
        "mask_decoder_f16": (lambda: [p.MaskDecoder(target="part_mask", weight=0.5, filters=16)], 1.3,
                             "MaskDecoder(filters=16)"),
        "mask_decoder_l2": (lambda: [p.MaskDecoder(target="part_mask", weight=0.5, levels=2)], 1.3,
                            "MaskDecoder(levels=2: P2-P3, 16x16 output)"),
        "cam_suppression_no_metric": (lambda: [_NoMetricCAMSuppression(classes=[0], mask="object_mask")], 1.05,
                                      "CAMSuppression without the cam_energy_in_mask metric"),
    }


class _NoMetricCAMSuppression(kp.priors.CAMSuppression):
    """CAMSuppression minus its training metric: separates the loss term's cost from the metric's."""

    def metric_names(self):
        return []

    def metric_values(self, targets, outputs, num_classes):
        return {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds and steps (a smoke run; ratios are noisy)")
    parser.add_argument("--backend", choices=_common.BACKENDS, help="Keras backend (sets KERAS_BACKEND)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 30, quick 5)")
    parser.add_argument("--steps", type=int, help="timed steps per configuration and round (default 1)")
    parser.add_argument("--configs", help="comma-separated subset of: " + ", ".join(configurations())
                        + "; investigation variants: " + ", ".join(extra_configurations()))
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile every model with jit_compile=True (XLA; default: Keras' 'auto')")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the forward pass alone (training=True) per configuration")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 30)
    steps_per_round = args.steps or 1
    if rounds < 1 or steps_per_round < 1:
        parser.error(f"Expected --rounds and --steps >= 1. Received: rounds={rounds}, steps={steps_per_round}")

    configs = configurations()
    if args.configs:
        configs = {**configs, **extra_configurations()}
        wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in configs]
        if unknown:
            parser.error(f"Unknown --configs {unknown}. Expected names from {list(configs)}")
        if "plain" not in wanted:
            wanted.insert(0, "plain")
        configs = {k: configs[k] for k in wanted}

    load_at_start = _common.load_average()
    t_start = time.perf_counter()
    keras.utils.set_random_seed(0)
    data = make_kakapo(BATCH, image_size=IMAGE_SIZE, species=SPECIES, seed=0)
    # The same batch, already on the backend, goes to every configuration: each model
    # reads the keys it needs, so host-to-device conversion costs all of them alike.
    keys = ("image", "label", "object_mask", "part_mask", "part_box", "aux_label")
    batch = {k: keras.ops.convert_to_tensor(data[k]) for k in keys}

    models, params = {}, {}
    for name, (make_priors, _, _) in configs.items():
        t0 = time.perf_counter()
        model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                             priors=make_priors())
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True if args.jit_compile else "auto")
        models[name] = model
        params[name] = model.network.count_params()
        print(f"built {name}: {params[name]:,} parameters in {time.perf_counter() - t0:.1f} s", flush=True)

    steps = {name: (lambda m=m: m.train_on_batch(batch)) for name, m in models.items()}
    print(f"timing train_on_batch: {rounds} rounds x {steps_per_round} steps per configuration", flush=True)
    per_round, first_step = _common.interleaved_rounds(steps, rounds, steps_per_round, warmup=2)

    if "plain" not in per_round:
        raise SystemExit(f"The plain model failed, so there is nothing to compare with: {first_step['plain']}")

    forward = None
    if args.breakdown:
        print("timing the forward pass alone (predict_on_batch: compiled, inference mode)", flush=True)
        forward, _ = _common.interleaved_rounds(
            {name: (lambda m=m: m.predict_on_batch(batch)) for name, m in models.items() if name in per_round},
            rounds, steps_per_round, warmup=2)

    # === Report ===
    rows = []
    for name, (_, target, note) in configs.items():
        if name not in per_round:
            rows.append([f"{name}: {note}", "-", "-", "-", "-", f"<= {target}" if target else "-",
                         first_step[name], f"{params[name]:,}", "-"] + (["-"] if forward is not None else []))
            continue
        q1, med, q3 = _common.quantiles(per_round[name])
        if name == "plain":
            ratio_cell, ratio_spread, verdict = "1.00", "-", "-"
        else:
            r1, r, r3 = _common.quantiles(_common.paired_ratios(per_round, name, "plain"))
            ratio_cell, ratio_spread = f"{r:.3f}", f"{r1:.2f}-{r3:.2f}"
            if target is None:
                verdict = "(info)"
            elif r <= target:
                verdict = "yes"
            elif r1 <= target:
                verdict = f"no (median {r:.3f} > {target}; spread reaches it)"
            else:
                verdict = "NO"
        row = [f"{name}: {note}", f"{med * 1e3:.1f}", f"{q1 * 1e3:.0f}-{q3 * 1e3:.0f}", ratio_cell, ratio_spread,
               f"<= {target}" if target else "-", verdict, f"{params[name]:,}", f"{first_step[name]:.1f}"]
        if forward is not None:
            if name in forward:
                fm = _common.quantiles(forward[name])[1]
                fr = _common.quantiles(_common.paired_ratios(forward, name, "plain"))[1]
                row.append(f"{fm * 1e3:.1f} ({fr:.2f}x)")
            else:
                row.append("-")
        rows.append(row)
    spread_word = "IQR" if rounds >= 4 else "min-max"
    header = ["config", "median ms/step", f"ms/step {spread_word}", "ratio vs plain", f"ratio {spread_word}",
              "target", "meets target?", "params", "first step s"]
    if forward is not None:
        header.append("forward only ms (ratio), predict_on_batch")

    print("\n## keras-priors: training-step overhead of each prior\n")
    for line in _common.machine_lines(load_at_start):
        print(line)
    print(f"- model: zoo `resnet_tiny`, 2 classes, {IMAGE_SIZE}x{IMAGE_SIZE}x3, batch {BATCH}, Adam, "
          f"`train_on_batch` on one fixed kakapo batch (no input pipeline in the timing), "
          f"jit_compile={models['plain'].jit_compile}")
    print(f"- timing: 2 warm-up steps per config, then {rounds} interleaved rounds x {steps_per_round} steps; "
          f"ms/step = median over rounds ({spread_word} shown); ratio = median over rounds of "
          f"(config / plain in the same round)")
    print(f"- total wall time {time.perf_counter() - t_start:.0f} s\n")
    print(_common.markdown_table(header, rows))
    missed = [r[0] for r in rows if r[6].startswith(("NO", "no "))]
    if missed:
        print(f"\nMissed targets: {', '.join(missed)}")
    failed = [r[0] for r in rows if r[6].startswith("failed")]
    if failed:
        print(f"\nFailed configurations: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
