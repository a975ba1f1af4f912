"""Recipes (one TOML file per prebuilt model) and crash-safe training."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings

import keras
import numpy as np

from keras_priors import data, experiment, priors
from keras_priors._atomic import save_model_atomic, write_atomic
from keras_priors.validation import check_positive_int
from keras_priors.zoo.evaluation import evaluate_classifier

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
            known = sorted(n for n in priors.__all__ if n not in ('Prior', 'BuildContext'))
            raise ValueError(f"Unknown prior type. Expected one of {known}. "
                             f"Received: type={kind!r}")
        out.append(cls(**spec))
    return out


def recipe_arrays(recipe: dict, quick: bool = False):
    """(train, test) numpy dicts of a recipe's data."""
    d = recipe["data"]
    image_size = int(recipe.get("input_shape", [64, 64, 3])[0])
    n_train, n_test = int(d.get("train_samples", 2000)), int(d.get("test_samples", 1000))
    if quick:
        n_train, n_test = min(n_train, 128), min(n_test, 64)
    return data.kakapo(split=("train", "test"), image_size=image_size, num_samples={"train": n_train, "test": n_test},
                       seed=int(d.get("seed", 0)), as_numpy=True)


def recipe_data(recipe: dict, quick: bool = False):
    """(train, test) datasets for a recipe: train reshuffled every epoch, test in order."""
    train, test = recipe_arrays(recipe, quick=quick)
    batch_size, seed = int(recipe["data"].get("batch_size", 64)), int(recipe["data"].get("seed", 0))
    return (data.make_pipeline(train, batch_size=batch_size, shuffle=True, seed=seed),
            data.make_pipeline(test, batch_size=batch_size, shuffle=False))


def epoch_ordered_batches(arrays: dict, batch_size: int, seed: int, initial_epoch: int = 0):
    """Batches of ``arrays`` in an order that depends only on ``(seed, epoch)``; returns ``(dataset, steps)``.

    Epoch ``e`` visits the examples in the permutation drawn by a stateless
    random op keyed by ``(seed, e)``, so a pipeline rebuilt to resume at epoch
    ``e`` yields exactly the batches an uninterrupted run sees in epoch ``e``
    (a ``shuffle(reshuffle_each_iteration=True)`` pipeline would replay epoch
    0's order). The dataset is endless, starting at ``initial_epoch``: pass
    ``steps`` to ``fit(steps_per_epoch=...)``.

    Example:
        >>> import numpy as np
        >>> arrays = {"image": np.zeros((5, 2, 2, 1), "float32"), "label": np.arange(5)}
        >>> ds, steps = epoch_ordered_batches(arrays, batch_size=2, seed=0)
        >>> steps
        3
        >>> labels = [b["label"].numpy().tolist() for b in ds.take(6)]
        >>> resumed, _ = epoch_ordered_batches(arrays, batch_size=2, seed=0, initial_epoch=1)
        >>> [b["label"].numpy().tolist() for b in resumed.take(3)] == labels[3:]
        True
    """
    import tensorflow as tf

    n = data.check_arrays(arrays)
    batch_size = check_positive_int("batch_size", batch_size, owner="epoch_ordered_batches")
    tensors = {k: tf.constant(np.asarray(v)) for k, v in arrays.items()}
    seed = tf.constant(int(seed), tf.int64)

    def epoch_order(epoch):
        keys = tf.random.stateless_uniform([n], seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)).batch(batch_size)

    ds = tf.data.Dataset.counter(int(initial_epoch)).flat_map(epoch_order)
    ds = ds.map(lambda index: {k: tf.gather(v, index) for k, v in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE), math.ceil(n / batch_size)


def build_from_recipe(recipe: dict):
    """The recipe's model, compiled (Adam, ``train.learning_rate``): the runner's build step."""
    return experiment.build_model(recipe["model"], num_classes=int(recipe["num_classes"]),
                                  input_shape=tuple(recipe.get("input_shape", (64, 64, 3))),
                                  priors=build_priors(recipe.get("priors", [])),
                                  learning_rate=float(recipe.get("train", {}).get("learning_rate", 1e-3)),
                                  dropout=float(recipe.get("dropout", 0.0)))


def recipe_identity(recipe: dict, quick: bool = False) -> dict:
    """What a run's weights depend on: the recipe without ``train.epochs`` (a longer run extends it), plus ``quick``."""
    identity = json.loads(json.dumps(recipe, default=str))
    identity.get("train", {}).pop("epochs", None)
    identity["quick"] = bool(quick)
    return identity


def recipe_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _differing_keys(a, b, prefix="") -> list:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differing_keys(a.get(key), b.get(key), f"{prefix}{key}.") if key in a and key in b else [
                f"{prefix}{key}"]
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _seed_states(model) -> list:
    """Every ``SeedGenerator`` state of ``model`` (data priors, dropout), in the model's variable order.

    A ``.keras`` file does not hold them, so the checkpoint's ``state.json`` does.
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _fsync(path: str) -> None:
    """Flush ``path`` (a file or, where the platform allows, a folder) to disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CorruptCheckpoint(ValueError):
    """A checkpoint unit that cannot be resumed (truncated, missing or unreadable file)."""


class AtomicCheckpoint(keras.callbacks.Callback):
    """After every epoch, write the model and the run's state as one unit: ``ckpt-<epoch>/``.

    A unit holds ``model.keras`` (weights and optimizer state, step count
    included) and ``state.json`` (epochs done, the recipe's hash, every
    ``SeedGenerator`` state, the ``model.keras`` checksum, the epoch's logs).
    Both are written into ``ckpt-<epoch>.tmp/``, flushed to disk, and the
    folder is renamed to ``ckpt-<epoch>``: a process killed at any moment
    leaves either the whole unit or none of it, and :meth:`restore` reads only
    complete units. The ``keep`` newest units stay, so a corrupt newest unit
    falls back to the one before.

    Args:
        directory: the checkpoint folder (created if needed).
        identity: the run's :func:`recipe_identity`, stored with each unit.
        recipe_path: shown in messages.
        keep: how many units to keep, at least 2 (default 2).
        extra_state: more JSON-able entries for ``state.json``.
    """

    FORMAT = 1

    def __init__(self, directory: str, identity: dict | None = None, recipe_path: str | None = None, keep: int = 2,
                 extra_state: dict | None = None):
        super().__init__()
        self.directory = directory
        self.identity = identity or {}
        self.recipe_path = recipe_path
        self.keep = check_positive_int("keep", keep, owner="AtomicCheckpoint")
        if self.keep < 2:
            raise ValueError(f"AtomicCheckpoint: Expected keep >= 2 (a corrupt newest unit falls back to the one "
                             f"before). Received: keep={keep}")
        self.extra_state = dict(extra_state or {})
        os.makedirs(directory, exist_ok=True)

    # === Layout ===
    def unit_path(self, epochs_done: int) -> str:
        return os.path.join(self.directory, f"ckpt-{int(epochs_done)}")

    def units(self) -> list:
        """``(epochs_done, path)`` of every complete-looking unit, newest first (``.tmp`` folders are skipped)."""
        out = []
        for name in os.listdir(self.directory) if os.path.isdir(self.directory) else ():
            match = re.fullmatch(r"ckpt-(\d+)", name)
            if match and os.path.isdir(os.path.join(self.directory, name)):
                out.append((int(match.group(1)), os.path.join(self.directory, name)))
        return sorted(out, reverse=True)

    # === Writing ===
    def on_epoch_end(self, epoch, logs=None):
        self.write(self.model, epoch + 1, logs)

    def write(self, model, epochs_done: int, logs=None) -> str:
        final = self.unit_path(epochs_done)
        tmp = final + ".tmp"
        if os.path.isdir(tmp):  # left by a process killed while writing this very unit
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        model_path = os.path.join(tmp, "model.keras")
        model.save(model_path)
        state = {
            "format": self.FORMAT,
            "epochs_done": int(epochs_done),
            "optimizer_iterations": int(model.optimizer.iterations) if model.optimizer is not None else None,
            "recipe_path": self.recipe_path,
            "recipe_sha256": recipe_hash(self.identity),
            "recipe": self.identity,
            "seed_states": [{"path": v.path, "value": np.asarray(v).tolist()} for v in _seed_states(model)],
            "model_sha256": _sha256(model_path),
            "model_bytes": os.path.getsize(model_path),
            "logs": {k: float(v) for k, v in (logs or {}).items()},
            **self.extra_state,
        }
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, indent=1)
        for name in ("model.keras", "state.json"):
            _fsync(os.path.join(tmp, name))
        _fsync(tmp)
        if os.path.exists(final):  # a unit we fell back from; kept beside, never deleted unread
            os.replace(final, f"{final}.corrupt-{int(time.time())}")
        os.replace(tmp, final)
        _fsync(self.directory)
        for _, old in self.units()[self.keep:]:
            shutil.rmtree(old)
        return final

    # === Reading ===
    def read_state(self, path: str) -> dict:
        """The ``state.json`` of unit ``path``, checked against its ``model.keras``; raises
        :class:`CorruptCheckpoint`."""
        state_path, model_path = os.path.join(path, "state.json"), os.path.join(path, "model.keras")
        for f in (state_path, model_path):
            if not os.path.isfile(f):
                raise CorruptCheckpoint(f"{os.path.basename(f)} is missing")
        try:
            with open(state_path) as f:
                state = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptCheckpoint(f"state.json is not valid JSON ({e})") from None
        need = ("format", "epochs_done", "recipe_sha256", "seed_states", "model_sha256", "model_bytes")
        if not isinstance(state, dict) or any(k not in state for k in need):
            raise CorruptCheckpoint(f"state.json lacks some of the keys {list(need)}")
        if state["format"] != self.FORMAT:
            raise CorruptCheckpoint(f"state.json has format {state['format']!r}, expected {self.FORMAT}")
        if f"ckpt-{state['epochs_done']}" != os.path.basename(os.path.normpath(path)):
            raise CorruptCheckpoint(f"state.json says epochs_done={state['epochs_done']!r}, not the folder's epoch")
        size = os.path.getsize(model_path)
        if size != state["model_bytes"] or _sha256(model_path) != state["model_sha256"]:
            raise CorruptCheckpoint(f"model.keras does not match the checksum in state.json "
                                    f"({size} bytes, {state['model_bytes']} written)")
        return state

    def load(self, path: str, state: dict):
        """The model of unit ``path`` with its seed states restored; raises :class:`CorruptCheckpoint`."""
        try:
            model = keras.saving.load_model(os.path.join(path, "model.keras"))
        except Exception as e:  # a checksum match makes this rare: a file from another Keras, say
            raise CorruptCheckpoint(f"model.keras does not load ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
                                    ) from None
        states = _seed_states(model)
        saved = state["seed_states"]
        # Matched by position (the model's variable order): auto-named paths differ between processes.
        if len(states) != len(saved) or any(np.shape(s["value"]) != tuple(v.shape) for v, s in zip(states, saved)):
            raise CorruptCheckpoint(f"its {len(saved)} seed state(s) do not fit the model's {len(states)}")
        for v, s in zip(states, saved):
            v.assign(np.asarray(s["value"], dtype=v.dtype))
        iterations = state.get("optimizer_iterations")
        if iterations is not None and (model.optimizer is None or int(model.optimizer.iterations) != iterations):
            raise CorruptCheckpoint(f"its optimizer state did not load (step {iterations} expected)")
        return model

    def restore(self, warn: bool = True):
        """``(model, state, path)`` of the newest unit that loads, or ``(None, None, None)`` when there is none.

        A corrupt unit is skipped with a warning naming it and why; when every
        unit is corrupt, a ``ValueError`` lists them.
        """
        legacy = [n for n in ("checkpoint.keras", "state.json") if os.path.exists(os.path.join(self.directory, n))]
        units = self.units()
        if legacy and not units:
            raise ValueError(f"{self.directory!r} holds {' and '.join(legacy)} from an earlier keras-priors, which "
                             f"cannot be resumed exactly. Expected ckpt-<epoch>/ folders. Use another --out, or move "
                             f"this folder away to start afresh.")
        problems = []
        for _, path in units:
            try:
                state = self.read_state(path)
                model = self.load(path, state)
            except CorruptCheckpoint as e:
                problems.append(f"{path}: {e}")
                continue
            if problems and warn:
                warnings.warn(f"Skipped corrupt checkpoint(s): {'; '.join(problems)}. Resuming from {path} "
                              f"({state['epochs_done']} epoch(s) done).", stacklevel=2)
            return model, state, path
        if problems:
            raise ValueError(f"No valid checkpoint to resume in {self.directory!r}: {'; '.join(problems)}. "
                             f"Use another --out, or move this folder away to start afresh.")
        return None, None, None


def _set_determinism(seed: int, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def train_recipe(recipe_path: str, out_dir: str, epochs: int | None = None, quick: bool = False,
                 verbose="auto", deterministic: bool = False, allow_recipe_change: bool = False) -> dict:
    """Train a recipe with a checkpoint every epoch; a rerun resumes after the last finished epoch.

    Writes ``<out_dir>/checkpoints/ckpt-<epoch>/`` (see
    :class:`AtomicCheckpoint`), ``<out_dir>/logs`` (TensorBoard) and, when
    done, ``<out_dir>/model.keras`` and ``<out_dir>/results.json``: the
    test metrics in the experiment runner's record
    (:func:`keras_priors.experiment.make_record`). A resumed run continues the data order,
    optimizer state and random state of the run it replaces, so it ends with
    the weights the uninterrupted run would have (bit for bit with
    ``deterministic``, which makes TensorFlow's ops deterministic).

    Args:
        recipe_path: a recipe TOML file.
        out_dir: the output folder.
        epochs: total epochs (default: the recipe's ``train.epochs``, else 5).
        quick: at most 128 training images.
        verbose: ``fit``'s verbosity.
        deterministic: seed everything and enable TensorFlow op determinism.
        allow_recipe_change: resume a checkpoint written for another recipe
            (its model, priors and optimizer continue on this recipe's data);
            by default that is refused.

    Raises:
        ValueError: the checkpoint was written for another recipe, or every
            checkpoint is corrupt.
    """
    recipe = load_recipe(recipe_path)
    epochs = check_positive_int("epochs", recipe.get("train", {}).get("epochs", 5) if epochs is None else epochs)
    identity = recipe_identity(recipe, quick=quick)
    _set_determinism(int(recipe.get("train", {}).get("seed", 0)), deterministic)
    ckpt = AtomicCheckpoint(os.path.join(out_dir, "checkpoints"), identity=identity, recipe_path=recipe_path,
                            extra_state={"deterministic": bool(deterministic)})
    model, state, path = ckpt.restore()
    done = 0
    if model is None:
        model = build_from_recipe(recipe)
    else:
        done = int(state["epochs_done"])
        if state["recipe_sha256"] != recipe_hash(identity):
            keys = _differing_keys(state.get("recipe", {}), identity)
            message = (f"The checkpoint {path} was trained with the recipe {state.get('recipe_path')!r} "
                       f"(sha256 {state['recipe_sha256'][:12]}), but this run's recipe {recipe_path!r} "
                       f"(sha256 {recipe_hash(identity)[:12]}) differs in {keys}")
            if not allow_recipe_change:
                raise ValueError(f"{message}. Use another --out, or pass --allow-recipe-change to resume the "
                                 f"checkpointed model anyway.")
            warnings.warn(f"{message}; resuming anyway (--allow-recipe-change): the checkpointed model, its priors "
                          f"and optimizer continue on this recipe's data.", stacklevel=2)
        if state.get("deterministic") != bool(deterministic):
            warnings.warn(f"The checkpoint {path} was written with deterministic={state.get('deterministic')}, "
                          f"this run has deterministic={bool(deterministic)}: the resumed run may not match an "
                          f"uninterrupted one bit for bit.", stacklevel=2)
        print(f"Resuming from {path}: {done} epoch(s) already done.")
    train_arrays, test_arrays = recipe_arrays(recipe, quick=quick)
    batch_size, seed = int(recipe["data"].get("batch_size", 64)), int(recipe["data"].get("seed", 0))
    train, steps = epoch_ordered_batches(train_arrays, batch_size, seed, initial_epoch=done)
    test = data.make_pipeline(test_arrays, batch_size=batch_size, shuffle=False)
    seconds = 0.0
    if done < epochs:
        start = time.perf_counter()
        model.fit(train, steps_per_epoch=steps, validation_data=test, epochs=epochs, initial_epoch=done,
                  verbose=verbose,
                  callbacks=[ckpt, keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"), write_graph=False)])
        seconds = time.perf_counter() - start
    final = os.path.join(out_dir, "model.keras")
    save_model_atomic(model, final)
    # The experiment runner's record (kp.experiment.make_record), as the demo and the evidence benchmark write it;
    # train_seconds counts this invocation's epochs only.
    record = experiment.make_record(
        os.path.splitext(os.path.basename(recipe_path))[0], int(recipe.get("train", {}).get("seed", 0)),
        train_images=len(train_arrays["label"]), epochs=epochs, steps=steps * epochs, train_seconds=seconds,
        metrics={**evaluate_classifier(model, test), "resumed_from": done})
    results_path = os.path.join(out_dir, "results.json")
    write_atomic(results_path, json.dumps(record, indent=2) + "\n")
    print(f"Saved {final}; test metrics in {results_path}")
    return {"model_path": final, "epochs": epochs, "resumed_from": done, "results": record}
