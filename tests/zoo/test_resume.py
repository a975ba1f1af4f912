"""Resume is exact: a killed and resumed ``train`` ends with the uninterrupted run's weights.

Checkpoints are atomic units (``ckpt-<epoch>/`` with ``model.keras`` and
``state.json``), a resume with another recipe is refused, and a corrupt newest
unit falls back to the one before.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo
from keras_priors.cli import main
from keras_priors.training import (AtomicCheckpoint, epoch_ordered_batches, load_recipe, recipe_identity,
                                   train_recipe)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Randomness in the train step from both a data prior (BackgroundSwap) and dropout; 4 steps an epoch.
RECIPE = """
model = "resnet_tiny"
num_classes = 2
input_shape = [32, 32, 3]
dropout = {dropout}
[data]
name = "kakapo"
train_samples = 64
test_samples = 16
batch_size = 16
[train]
epochs = {epochs}
learning_rate = {lr}
[[priors]]
type = "BackgroundSwap"
[[priors]]
type = "CAMSuppression"
classes = [0, 1]
"""


def write_recipe(path, epochs=3, lr=0.003, dropout=0.2):
    path.write_text(RECIPE.format(epochs=epochs, lr=lr, dropout=dropout))
    return str(path)


def units(out):
    folder = out / "checkpoints"
    return sorted(n for n in os.listdir(folder)) if folder.is_dir() else []


def state_weights(model):
    """Weights and optimizer variables (step count included) as numpy arrays."""
    return [np.asarray(v) for v in model.weights + model.optimizer.variables]


def test_kill_9_and_resume_ends_with_the_uninterrupted_weights(tmp_path):
    epochs = 6
    recipe = write_recipe(tmp_path / "r.toml", epochs=epochs)
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "tensorflow"}

    def command(out):
        return [sys.executable, "-m", "keras_priors.cli", "train", "--recipe", recipe, "--out", str(out),
                "--deterministic"]

    def start(out):  # output to a file: an unread pipe that fills up would stall the run
        with open(f"{out}.log", "w") as log:
            return subprocess.Popen(command(out), env=env, stdout=log, stderr=subprocess.STDOUT)

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = start(whole)  # runs beside the one we kill
    victim = start(killed)
    deadline = time.time() + 240
    while not (killed / "checkpoints" / "ckpt-1").is_dir():
        assert victim.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    left = units(killed)
    # Killed mid-run (not after the last epoch, when the test would prove nothing).
    assert not (killed / "model.keras").exists() and f"ckpt-{epochs}" not in left, left

    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout and "epoch(s) already done" in resumed.stdout, (left, resumed.stdout)
    assert reference.wait(timeout=300) == 0, (tmp_path / "whole.log").read_text()[-2000:]

    a = keras.saving.load_model(str(whole / "model.keras"))
    b = keras.saving.load_model(str(killed / "model.keras"))
    assert int(a.optimizer.iterations) == int(b.optimizer.iterations) == epochs * 4
    for x, y in zip(state_weights(a), state_weights(b), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=f"killed with {left}")
    # The seed states (BackgroundSwap's generator, dropout's) ended where the uninterrupted run's did.
    last = lambda out: json.loads((out / "checkpoints" / f"ckpt-{epochs}" / "state.json").read_text())  # noqa: E731
    seeds = lambda out: [s["value"] for s in last(out)["seed_states"]]  # noqa: E731
    assert seeds(whole) == seeds(killed), (left, seeds(whole), seeds(killed))
    assert seeds(whole)[0] == [0, epochs * 4]  # BackgroundSwap's generator advanced once a step


def test_epoch_order_depends_only_on_seed_and_epoch():
    arrays = {"image": np.zeros((10, 2, 2, 1), "float32"), "label": np.arange(10)}
    ds, steps = epoch_ordered_batches(arrays, batch_size=4, seed=7)
    assert steps == 3
    batches = [b["label"].numpy().tolist() for b in ds.take(3 * steps)]
    epochs = [sum(batches[i * steps:(i + 1) * steps], []) for i in range(3)]
    assert [len(b) for b in batches[:steps]] == [4, 4, 2]  # each epoch ends with its own short batch
    for order in epochs:
        assert sorted(order) == list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]
    resumed, _ = epoch_ordered_batches(arrays, batch_size=4, seed=7, initial_epoch=2)
    assert sum([b["label"].numpy().tolist() for b in resumed.take(steps)], []) == epochs[2]
    other, _ = epoch_ordered_batches(arrays, batch_size=4, seed=8)
    assert sum([b["label"].numpy().tolist() for b in other.take(steps)], []) != epochs[0]


@pytest.fixture(scope="module")
def small_model(kakapo32):
    """A built model with a built optimizer, at step 7 (no training: a train step's tracing costs seconds)."""
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.BackgroundSwap()],
                      dropout=0.2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model({k: v[:2] for k, v in kakapo32.items()}, training=False)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(7)
    return model


def test_a_unit_is_written_whole_or_not_at_all(tmp_path, small_model, monkeypatch):
    ckpt = AtomicCheckpoint(str(tmp_path / "c"), identity={"model": "x"})
    small_model.batch_seed_generator.state.assign(np.array([0, 5], "int64"))
    ckpt.write(small_model, 1, {"loss": 1.5})
    assert sorted(os.listdir(tmp_path / "c" / "ckpt-1")) == ["model.keras", "state.json"]
    state = json.loads((tmp_path / "c" / "ckpt-1" / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["logs"] == {"loss": 1.5}
    assert state["seed_states"][0]["value"] == [0, 5] and state["optimizer_iterations"] == 7

    # A kill after both files are written but before the rename: the unit does not exist, the old one is used.
    real_replace = os.replace

    def killed_at_rename(src, dst):
        if src.endswith("ckpt-2.tmp"):
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_rename)
    with pytest.raises(KeyboardInterrupt):
        ckpt.write(small_model, 2)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "c")) == ["ckpt-1", "ckpt-2.tmp"]
    model, state, path = ckpt.restore()
    assert path.endswith("ckpt-1") and state["epochs_done"] == 1
    np.testing.assert_array_equal(np.asarray(model.batch_seed_generator.state), [0, 5])
    assert int(model.optimizer.iterations) == 7
    for x, y in zip(state_weights(model), state_weights(small_model), strict=True):
        np.testing.assert_array_equal(x, y)

    # The next write of that epoch replaces the stale .tmp; only the `keep` newest units stay.
    for epoch in (2, 3, 4):
        ckpt.write(small_model, epoch)
    assert sorted(os.listdir(tmp_path / "c")) == ["ckpt-3", "ckpt-4"]


def test_a_resume_with_another_recipe_is_refused(tmp_path, small_model, capsys):
    first = write_recipe(tmp_path / "plain.toml", epochs=1)
    out = tmp_path / "run"
    AtomicCheckpoint(str(out / "checkpoints"), identity=recipe_identity(load_recipe(first)),
                     recipe_path=first).write(small_model, 1)
    other = write_recipe(tmp_path / "other.toml", epochs=2, lr=0.01)
    with pytest.raises(ValueError, match="differs in") as error:
        train_recipe(other, str(out), verbose=0)
    message = str(error.value)
    for fragment in ("plain.toml", "other.toml", "['train.learning_rate']", "--allow-recipe-change"):
        assert fragment in message, (fragment, message)
    capsys.readouterr()
    assert main(["train", "--recipe", other, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "other.toml" in err and "plain.toml" in err
    with pytest.raises(ValueError, match=r"differs in \['quick'\]"):  # --quick trains on other data
        train_recipe(first, str(out), quick=True, verbose=0)
    assert units(out) == ["ckpt-1"] and not (out / "model.keras").exists()  # nothing trained

    # --allow-recipe-change resumes the checkpointed model; more epochs of a recipe is the same run, resumed.
    with pytest.warns(UserWarning, match="resuming anyway"):
        result = train_recipe(other, str(out), verbose=0, allow_recipe_change=True)
    assert result["resumed_from"] == 1 and units(out) == ["ckpt-1", "ckpt-2"]
    assert int(keras.saving.load_model(str(out / "model.keras")).optimizer.iterations) == 7 + 4
    assert train_recipe(other, str(out), verbose=0)["resumed_from"] == 2  # the new unit carries the new recipe

    # The test metrics are saved in the experiment runner's record format.
    from keras_priors.experiment import RUN_KEYS

    record = json.loads((out / "results.json").read_text())
    assert list(record)[:len(RUN_KEYS)] == list(RUN_KEYS)
    assert record["config"] == "other" and record["epochs"] == 2 and record["resumed_from"] == 2
    assert record["train_seconds"] == 0.0  # nothing left to train in this invocation
    assert 0.0 <= record["accuracy"] <= 1.0 and record["n"] > 0


def test_a_corrupt_newest_unit_falls_back_with_a_warning(tmp_path, small_model):
    ckpt = AtomicCheckpoint(str(tmp_path / "c"))
    for epoch in (1, 2):
        ckpt.write(small_model, epoch)
    newest = tmp_path / "c" / "ckpt-2"
    for name in ("model.keras", "state.json"):
        original = (newest / name).read_bytes()
        (newest / name).write_bytes(original[: len(original) // 2])  # truncated
        with pytest.warns(UserWarning, match=rf"ckpt-2: {name}.*Resuming from .*ckpt-1"):
            _, state, path = ckpt.restore()
        assert path.endswith("ckpt-1") and state["epochs_done"] == 1
        (newest / name).write_bytes(original)
    assert ckpt.restore()[2].endswith("ckpt-2")

    # Redoing the epoch keeps the corrupt unit beside, renamed, and writes a good one.
    (newest / "model.keras").write_bytes(b"")
    with pytest.warns(UserWarning):
        ckpt.restore()
    ckpt.write(small_model, 2)
    assert any(n.startswith("ckpt-2.corrupt-") for n in os.listdir(tmp_path / "c"))
    assert ckpt.restore()[2].endswith("ckpt-2")


def test_no_valid_unit_is_a_clear_error(tmp_path, small_model, capsys):
    out = tmp_path / "run"
    ckpt = AtomicCheckpoint(str(out / "checkpoints"))
    for epoch in (1, 2):
        ckpt.write(small_model, epoch)
    (out / "checkpoints" / "ckpt-2" / "state.json").write_text('{"epochs_do')
    (out / "checkpoints" / "ckpt-1" / "model.keras").unlink()
    with pytest.raises(ValueError) as error:
        ckpt.restore()
    assert type(error.value) is ValueError  # not json.JSONDecodeError, not FileNotFoundError
    message = str(error.value)
    for fragment in ("No valid checkpoint", "ckpt-2: state.json is not valid JSON", "ckpt-1: model.keras is missing",
                     "another --out"):
        assert fragment in message, (fragment, message)
    recipe = write_recipe(tmp_path / "r.toml", epochs=1)
    assert main(["train", "--recipe", recipe, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No valid checkpoint" in err and "Traceback" not in err


def test_a_checkpoint_folder_from_an_earlier_version_is_named(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "checkpoint.keras").write_bytes(b"old")
    (folder / "state.json").write_text('{"epochs_done": 2}')
    with pytest.raises(ValueError, match="checkpoint.keras and state.json from an earlier keras-priors"):
        AtomicCheckpoint(str(folder)).restore()
