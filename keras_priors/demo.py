"""``keras-priors demo``: the same small model on kakapo data, without and with priors."""

from __future__ import annotations

import json
import os

import keras

from keras_priors import callbacks as kp_callbacks
from keras_priors._atomic import save_model_atomic, write_atomic
from keras_priors import data, experiment, priors

#: (train images, test images, epochs) per size.
SIZES = {"default": (2000, 1000, 6), "quick": (192, 96, 1)}


def demo_priors() -> dict:
    """The configurations the demo compares, by name (the last one is exported)."""
    return {
        "plain": [],
        # A loss on where the last layer reports evidence: moves the CAM onto the bird.
        "cam_suppression": [priors.CAMSuppression(classes=[0, 1], mask="object_mask")],
        # Counterexamples: each bird on another image's background, so the background says nothing.
        # Needs the object mask in training only; the exported model takes the image alone.
        "background_swap": [priors.BackgroundSwap(mask="object_mask")],
    }


def format_table(results: dict) -> str:
    """A Markdown table of the demo's results."""
    lines = [
        "| model | test accuracy | worst-group accuracy | CAM energy in object mask | ECE | train time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['accuracy']:.3f} | {r['worst_group_accuracy']:.3f} | {r['cam_energy_in_mask']:.3f} "
            f"| {r['ece']:.3f} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def write_example_images(dataset, folder: str, n: int = 8) -> str:
    """Write the first ``n`` test images as PNG files (for trying ``keras-priors explain``); returns the folder."""
    import numpy as np
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    batch = next(iter(dataset))
    images = np.asarray(batch["image"])[:n]
    labels = np.asarray(batch["label"])[:n]
    for i, (img, label) in enumerate(zip(images, labels)):
        png = tf.io.encode_png(np.round(np.clip(img, 0.0, 1.0) * 255).astype("uint8")).numpy()
        name = "kakapo" if int(label) == 0 else "other_bird"
        write_atomic(os.path.join(folder, f"test_{i:02d}_{name}.png"), png)
    return folder


def worst_group_change(results: dict, name: str) -> str:
    """One line: how far ``name`` moved worst-group accuracy from the plain model."""
    plain, prior = results["plain"]["worst_group_accuracy"], results[name]["worst_group_accuracy"]
    return (f"Worst-group accuracy, plain -> {name}: {plain:.3f} -> {prior:.3f} "
            f"({100 * (prior - plain):+.1f} points; {name} needs no annotation at test time).")


def run_demo(out_dir: str = "keras_priors_demo", quick: bool = False, epochs: int | None = None,
             seed: int = 0, image_size: int = 64, batch_size: int = 64, verbose: int | str = "auto") -> dict:
    """Train resnet_tiny on kakapo without and with priors; print and save a results table.

    The training split ties the background to the label (95 % of kakapos on
    the ground), the test split does not, so a model that learned the
    background shortcut loses accuracy on the test groups where the shortcut
    lies (worst-group accuracy).

    Writes ``<out_dir>/logs/<config>`` (TensorBoard: loss terms, metrics, CAM
    overlays), ``<out_dir>/model.keras`` and ``<out_dir>/exported`` (the
    background-swap model; the SavedModel holds the classifier only, with
    ``serve`` and ``cam`` endpoints) and ``<out_dir>/results.md``/``results.json``.

    Returns:
        ``{config: metrics}``.
    """
    n_train, n_test, default_epochs = SIZES["quick" if quick else "default"]
    epochs = epochs or default_epochs
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    print(f"keras-priors demo: kakapo {image_size}px, {n_train} train / {n_test} test images, "
          f"{epochs} epoch(s) per model, backend {keras.backend.backend()}")
    train, test = data.kakapo(split=("train", "test"), image_size=image_size,
                              num_samples={"train": n_train, "test": n_test}, batch_size=batch_size, seed=seed)

    def callbacks(name, seed):
        log_dir = os.path.join(out_dir, "logs", name)
        return [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
                kp_callbacks.CAMImages(test, log_dir=log_dir, every_n_epochs=1, max_images=8)]

    records = experiment.run(demo_priors(), train, test, num_classes=2, input_shape=(image_size, image_size, 3),
                             seeds=(seed,), epochs=epochs, learning_rate=2e-3, callbacks=callbacks,
                             validation_data=test, train_images=n_train, verbose=verbose)
    results = {r["config"]: {**{k: v for k, v in r.items() if k not in experiment.RUN_KEYS},
                             "train_seconds": r["train_seconds"]} for r in records}
    models = {r["config"]: records.model(r["config"]) for r in records}
    last = list(models)[-1]
    model_path = os.path.join(out_dir, "model.keras")
    save_model_atomic(models[last], model_path)
    images_dir = write_example_images(test, os.path.join(out_dir, "images"))
    export_dir = os.path.join(out_dir, "exported")
    models[last].export(export_dir)  # from torch, written by a TensorFlow process (see PriorModel.export)
    table = format_table(results) + "\n\n" + worst_group_change(results, last)
    write_atomic(os.path.join(out_dir, "results.md"), table + "\n")
    write_atomic(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2) + "\n")
    print("\n" + table)
    print(f"\nResults:     {os.path.join(out_dir, 'results.md')}")
    print(f"Keras model: {model_path} ({last})")
    print(f"Explain it:  keras-priors explain --model {model_path} --images {images_dir} --method gradcam "
          f"--out {os.path.join(out_dir, 'explained')}")
    print(f"SavedModel:  {export_dir}")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(out_dir, 'logs')}")
    return results
