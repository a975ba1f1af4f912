"""Recipes (one TOML file per prebuilt model) and crash-safe training."""

from __future__ import annotations

import json
import math
import os
import sys

import keras

from keras_priors import data, priors, zoo
from keras_priors._atomic import save_model_atomic, write_atomic
from keras_priors.validation import check_positive_int

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_DATASETS = ("kakapo",)


def load_recipe(path: str) -> dict:
    """Read and check a recipe file (see ``zoo/*.toml``)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Recipe not found. Expected a TOML file. Received: {path!r}")
    with open(path, "rb") as f:
        try:
            recipe = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"Recipe {path!r} is not valid TOML: {e}") from e
    for key in ("model", "num_classes", "data"):
        if key not in recipe:
            raise ValueError(f"Recipe {path!r} lacks the key {key!r}. Expected keys model, num_classes, data, "
                             f"train, priors. Received keys: {sorted(recipe)}")
    name = recipe["data"].get("name")
    if name not in _DATASETS:
        raise ValueError(f"Recipe {path!r}: Expected data.name in {list(_DATASETS)}. Received: {name!r}")
    _check_train_section(path, recipe.get("train", {}))
    return recipe


def _check_train_section(path: str, train: dict) -> None:
    """Refuse a ``[train]`` value that ``float()``/``int()`` would turn into a wrong number or a bare error."""
    lr = train.get("learning_rate", 1e-3)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"Recipe {path!r}: Expected train.learning_rate to be a number > 0. "
                         f"Received: train.learning_rate={lr!r}")
    if "epochs" in train:
        check_positive_int("train.epochs", train["epochs"], owner=f"Recipe {path!r}")


def build_priors(specs: list) -> list:
    """``[{"type": "CAMSuppression", ...}]`` -> prior objects."""
    out = []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("type", None)
        cls = getattr(priors, str(kind), None)
        if cls is None or not (isinstance(cls, type) and issubclass(cls, priors.Prior)):
            raise ValueError(f"Unknown prior type. Expected one of {sorted(n for n in priors.__all__ if n not in ('Prior', 'BuildContext'))}. "
                             f"Received: type={kind!r}")
        out.append(cls(**spec))
    return out


def recipe_data(recipe: dict, quick: bool = False):
    """(train, test) datasets for a recipe."""
    d = recipe["data"]
    image_size = int(recipe.get("input_shape", [64, 64, 3])[0])
    n_train, n_test = int(d.get("train_samples", 2000)), int(d.get("test_samples", 1000))
    if quick:
        n_train, n_test = min(n_train, 128), min(n_test, 64)
    return data.kakapo(split=("train", "test"), image_size=image_size, num_samples={"train": n_train, "test": n_test},
                       batch_size=int(d.get("batch_size", 64)), seed=int(d.get("seed", 0)))


def build_from_recipe(recipe: dict):
    model = zoo.build(recipe["model"], num_classes=int(recipe["num_classes"]),
                      input_shape=tuple(recipe.get("input_shape", (64, 64, 3))),
                      priors=build_priors(recipe.get("priors", [])))
    lr = float(recipe.get("train", {}).get("learning_rate", 1e-3))
    model.compile(optimizer=keras.optimizers.Adam(lr))
    return model


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (weights and optimizer state) after every epoch, atomically.

    The ``.keras`` file is written beside the target and renamed into place,
    then ``state.json`` records the finished epoch, so a process killed at any
    moment leaves the last finished epoch's checkpoint intact.
    """

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    @property
    def model_path(self):
        return os.path.join(self.directory, "checkpoint.keras")

    @property
    def state_path(self):
        return os.path.join(self.directory, "state.json")

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomic(self.model, self.model_path)
        state = {"epochs_done": epoch + 1, "logs": {k: float(v) for k, v in (logs or {}).items()}}
        write_atomic(self.state_path, json.dumps(state))

    def restore(self):
        """(model, epochs_done) from the last checkpoint, or (None, 0)."""
        if not (os.path.exists(self.model_path) and os.path.exists(self.state_path)):
            return None, 0
        with open(self.state_path) as f:
            done = int(json.load(f)["epochs_done"])
        return keras.saving.load_model(self.model_path), done


def train_recipe(recipe_path: str, out_dir: str, epochs: int | None = None, quick: bool = False,
                 verbose="auto") -> dict:
    """Train a recipe with a checkpoint every epoch; a rerun resumes after the last finished epoch.

    Writes ``<out_dir>/checkpoints/``, ``<out_dir>/logs`` (TensorBoard) and,
    when done, ``<out_dir>/model.keras``.
    """
    recipe = load_recipe(recipe_path)
    epochs = check_positive_int("epochs", recipe.get("train", {}).get("epochs", 5) if epochs is None else epochs)
    train, test = recipe_data(recipe, quick=quick)
    ckpt = AtomicCheckpoint(os.path.join(out_dir, "checkpoints"))
    model, done = ckpt.restore()
    if model is None:
        keras.utils.set_random_seed(int(recipe.get("train", {}).get("seed", 0)))
        model = build_from_recipe(recipe)
    else:
        print(f"Resuming from {ckpt.model_path}: {done} epoch(s) already done.")
    if done < epochs:
        model.fit(train, validation_data=test, epochs=epochs, initial_epoch=done, verbose=verbose,
                  callbacks=[ckpt, keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"), write_graph=False)])
    final = os.path.join(out_dir, "model.keras")
    save_model_atomic(model, final)
    print(f"Saved {final}")
    return {"model_path": final, "epochs": epochs, "resumed_from": done}
