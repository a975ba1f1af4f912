"""Faithfulness and localisation of every explainer on a trained model: the AD/IC table of issue #5.

    python benchmarks/explain_quality.py [--quick] [--model path.keras] [--save path.keras]

Trains resnet_tiny (``keras_priors.zoo``) on Decoy Fashion-MNIST (Ross et al.
2017; 32x32 RGB, a corner swatch whose shade gives the label in training, a
random shade at test) for a few epochs on CPU, or loads ``--model``. Then, on
shortcut-free test images, runs CAM, Grad-CAM, Grad-CAM++, Score-CAM, L-CAM
(attention trained on the training images, classifier frozen) and a random
map, and prints for each:

* Average Drop (lower is better) and Increase in Confidence (higher is better)
  at 100 / 50 / 15 % kept area (``average_drop_increase_confidence``);
* deletion AUC (lower is better) and insertion AUC (higher is better), 20
  steps, zero baseline (``deletion_insertion``);
* ROAD (Rong et al. 2022, ``road``): mean target probability with the most
  (MoRF, lower is better) / least (LeRF, higher is better) relevant 10-90 %
  of pixels removed by noisy linear imputation, and (LeRF - MoRF) / 2;
* share of the map's energy inside the garment mask and inside the decoy
  swatch (``energy_in_mask``), the energy-based pointing game on the
  garment's bounding box (Score-CAM), relevance mass accuracy on the garment
  mask (CLEVR-XAI), and the pointing game on the garment mask, strict and
  with Zhang et al.'s 15 px at 224 px scaled to 32 px (2.1 px);
* explainer time per image (compiled, this machine).

Uses Debian's Fashion-MNIST files (``/usr/share/datasets/fashion-mnist``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import load_average, machine_lines, markdown_table, select_backend  # noqa: E402

select_backend()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_priors as kp  # noqa: E402
from keras_priors.explain import (  # noqa: E402
    CAM,
    LCAM,
    GradCAM,
    GradCAMPlusPlus,
    ScoreCAM,
    average_drop_increase_confidence,
    deletion_insertion,
    energy_in_mask,
    energy_pointing_game,
    metric_legend,
    pointing_game,
    relevance_mass_accuracy,
    road,
)
from keras_priors.explain.metrics import POINTING_GAME_TOLERANCE  # noqa: E402

SIZE = 32
#: Zhang et al.'s 15 px tolerance at 224 px, scaled to SIZE.
TOLERANCE = POINTING_GAME_TOLERANCE * SIZE / 224


def bounding_boxes(masks):
    """(B, 4) boxes (y_min, x_min, y_max, x_max), max exclusive, around each mask; an empty mask gives an empty box."""
    masks = np.asarray(masks).reshape(len(masks), masks.shape[1], masks.shape[2]) > 0.5
    boxes = np.zeros((len(masks), 4), np.int64)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(ys):
            boxes[i] = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    return boxes


def train_model(train, epochs, batch_size, seed):
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = kp.zoo.build("resnet_tiny", num_classes=10, input_shape=(SIZE, SIZE, 3))
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    ds = tf.data.Dataset.from_tensor_slices({"image": train["image"], "label": train["label"]})
    ds = ds.shuffle(len(train["label"]), seed=seed).batch(batch_size)
    model.fit(ds, epochs=epochs, verbose=2)
    return model


def accuracy(classifier, data, batch_size=256):
    logits = classifier.predict(data["image"], batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == data["label"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script (numbers meaningless)")
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default=None)
    parser.add_argument("--model", default=None, help="a .keras classifier or zoo model (skips training)")
    parser.add_argument("--save", default=None, help="save the trained zoo model here (.keras)")
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--test-samples", type=int, default=None, help="images explained")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_at_start = load_average()
    n_train, n_test, epochs, lcam_epochs = (512, 16, 1, 1) if args.quick else (12000, 200, 4, 3)
    n_train, n_test = args.train_samples or n_train, args.test_samples or n_test
    epochs = args.epochs or epochs

    train = kp.data.decoy_fashion_mnist("train", num_samples=n_train, image_size=SIZE, seed=args.seed)
    test = kp.data.decoy_fashion_mnist("test", num_samples=n_test, image_size=SIZE, seed=args.seed + 1)
    t0 = time.perf_counter()
    if args.model:
        model = keras.saving.load_model(args.model, compile=False)
        print(f"Loaded {args.model}")
        trained = f"loaded from {args.model}"
    else:
        print(f"Training resnet_tiny on {n_train} Decoy Fashion-MNIST images, {epochs} epochs:", flush=True)
        model = train_model(train, epochs, 64, args.seed)
        trained = f"resnet_tiny trained here: {n_train} images, {epochs} epochs, {time.perf_counter() - t0:.0f} s"
        if args.save:
            model.save(args.save)
            print(f"Saved {args.save}")
    classifier = kp.zoo.logits_classifier(model)
    test_shortcut = kp.data.decoy_fashion_mnist("test", num_samples=n_test, image_size=SIZE, seed=args.seed + 1,
                                                shortcut=True)
    acc = {"test (random swatch)": accuracy(classifier, test),
           "test (label swatch)": accuracy(classifier, test_shortcut)}
    print("Accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()), flush=True)

    x = test["image"]
    # Explain the predicted class (the convention of AD/IC: the class the model gives).
    targets = np.argmax(classifier.predict(x, batch_size=256, verbose=0), -1).astype(np.int32)
    print(f"L-CAM: training the attention module ({lcam_epochs} epochs, classifier frozen):", flush=True)
    lcam = LCAM(classifier, variant="Fm")
    lcam.compile(keras.optimizers.Adam(1e-3))
    lcam.fit(train["image"][: min(n_train, 6000)], train["label"][: min(n_train, 6000)], epochs=lcam_epochs,
             batch_size=64, verbose=2)
    classifier.trainable = True  # LCAM froze it; the metrics only run it forward
    rng = np.random.default_rng(args.seed)
    explainers = {
        "CAM": CAM(classifier),
        "Grad-CAM": GradCAM(classifier),
        "Grad-CAM++": GradCAMPlusPlus(classifier),
        "Score-CAM": ScoreCAM(classifier, batch_size=256),
        "L-CAM (Fm)": lcam,
        "random map (baseline)": lambda images, t: rng.uniform(size=images.shape[:3]).astype("float32"),
    }
    obj, decoy = test["object_mask"], test["decoy_mask"]
    boxes = bounding_boxes(obj)
    rows = []
    for name, ex in explainers.items():
        print(f"{name}: maps ...", end="", flush=True)
        ex(x[:2], targets[:2])  # trace / compile outside the timing
        t = time.perf_counter()
        maps = ex(x, targets)
        per_image = (time.perf_counter() - t) / len(x)
        print(" AD/IC ...", end="", flush=True)
        adic = average_drop_increase_confidence(classifier, x, maps, targets, batch_size=256)
        print(" deletion/insertion ...", end="", flush=True)
        di = deletion_insertion(classifier, x, maps, targets, steps=20, batch_size=512)
        print(" ROAD ...", end="", flush=True)
        rd = road(classifier, x, maps, targets, batch_size=512)
        print(" done", flush=True)
        rows.append([name] + [f"{adic[f'{k}@{p}']:.1f}" for p in (100, 50, 15)
                              for k in ("average_drop", "increase_in_confidence")]
                    + [f"{di['deletion_auc'].mean():.3f}", f"{di['insertion_auc'].mean():.3f}",
                       f"{rd['morf'].mean():.3f}", f"{rd['lerf'].mean():.3f}", f"{rd['combined'].mean():.3f}",
                       f"{energy_in_mask(maps, obj).mean():.3f}", f"{energy_in_mask(maps, decoy).mean():.3f}",
                       f"{energy_pointing_game(maps, boxes=boxes).mean():.3f}",
                       f"{np.nanmean(relevance_mass_accuracy(maps, obj)):.3f}",
                       f"{100 * pointing_game(maps, obj).mean():.1f}",
                       f"{100 * pointing_game(maps, obj, tolerance=TOLERANCE).mean():.1f}", f"{per_image * 1e3:.2f}"])

    print("\n## Explainer faithfulness and localisation (issue #5)\n")
    print("\n".join(machine_lines(load_at_start)))
    print(f"- model: {trained}; accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    print(f"- data: Decoy Fashion-MNIST {SIZE}x{SIZE} RGB, {n_test} test images with a random-shade swatch "
          f"(no shortcut); targets = predicted class; garment mask {obj.mean() * 100:.1f} % and swatch "
          f"{decoy.mean() * 100:.1f} % of the image area on average")
    print("- legend (what, unit, which way is better; p = % of the map's area kept):")
    for key in ("average_drop@p", "increase_in_confidence@p", "deletion_auc", "insertion_auc", "road_morf",
                "road_lerf", "road_combined", "energy_in_mask", "energy_pointing_game", "relevance_mass_accuracy",
                "pointing_game", "pointing_game_15px"):
        print(f"  - {metric_legend(key)}")
    print(f"- deletion/insertion: 20 steps, zero baseline; ROAD: removed fractions 0.1-0.9, noise 0.01; energy "
          f"pointing game on the garment's bounding box; pointing game with 15 px at 224 px = {TOLERANCE:.1f} px "
          "here\n")
    header = ["method", "AD@100 (%)", "IC@100 (%)", "AD@50 (%)", "IC@50 (%)", "AD@15 (%)", "IC@15 (%)",
              "deletion AUC", "insertion AUC", "ROAD MoRF (prob)", "ROAD LeRF (prob)", "ROAD combined",
              "energy in garment", "energy in swatch", "energy pointing game (box)", "relevance mass accuracy",
              "pointing game (%)", f"pointing game {TOLERANCE:.1f} px (%)", "ms / image"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
