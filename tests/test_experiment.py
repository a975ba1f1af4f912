"""keras_priors.experiment: one runner for "plain vs priors, same budget, same data, seeds, evaluate, record"."""

import math

import keras
import numpy as np
import pytest

from keras_priors import experiment, priors


def _arrays(n, seed=0, size=16):
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n, size, size, 3), dtype="float32"), "label": np.arange(n) % 2,
            "group": np.arange(n) % 4, "object_mask": np.ones((n, size, size, 1), "float32")}


def _run(configs=None, train=None, **kwargs):
    kwargs = {"num_classes": 2, "input_shape": (16, 16, 3), "batch_size": 8, "verbose": 0, **kwargs}
    return experiment.run(configs or {"plain": []}, _arrays(16) if train is None else train, _arrays(8, seed=1),
                          **kwargs)


def test_records_have_the_run_fields_and_the_metrics():
    records = _run({"plain": [], "cam": lambda: [priors.CAMSuppression(mask="object_mask")]}, steps=3, seeds=(0, 1))
    assert [(r["config"], r["seed"]) for r in records] == [("plain", 0), ("cam", 0), ("plain", 1), ("cam", 1)]
    for r in records:
        assert list(r)[:6] == list(experiment.RUN_KEYS)
        assert (r["train_images"], r["epochs"], r["steps"]) == (16, 2, 4)  # 3 steps, 2 batches per pass: 2 x 2
        assert r["train_seconds"] > 0
        assert {"accuracy", "worst_group_accuracy", "cam_energy_in_mask", "ece", "n"} <= set(r)
        assert r["n"] == 8
    assert sorted(records.models) == [("cam", 0), ("cam", 1), ("plain", 0), ("plain", 1)]
    assert records.model("cam") is records.models[("cam", 1)]
    with pytest.raises(KeyError, match="Received: config='nosuch'"):
        records.model("nosuch")


def test_same_seed_gives_the_same_record():
    first, second = (_run({"cam": lambda: [priors.CAMSuppression(mask="object_mask")]}, steps=2, seeds=(3,),
                          schedule="cosine", learning_rate=5e-3)[0] for _ in range(2))
    drop = ("train_seconds",)
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    other = _run({"cam": lambda: [priors.CAMSuppression(mask="object_mask")]}, steps=2, seeds=(4,),
                 schedule="cosine", learning_rate=5e-3)[0]
    assert other["ece"] != first["ece"]  # the seed matters


def test_every_configuration_sees_the_same_batches():
    """Arrays are batched per run after the seed is set: two identical configurations end identical, whatever the
    global seed was before (tf.data's shuffle order depends on it)."""
    keras.utils.set_random_seed(123)
    records = _run({"a": [], "b": []}, steps=4, schedule="cosine")
    a, b = ({k: v for k, v in r.items() if k not in ("config", "train_seconds")} for r in records)
    assert a == b
    for wa, wb in zip(records.model("a").weights, records.model("b").weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(wa), keras.ops.convert_to_numpy(wb))


def test_same_budget_rule_fixes_the_steps_when_the_training_set_shrinks():
    full = _run(train=_arrays(16), steps=4, epochs=1)[0]
    small = _run(train=_arrays(4), steps=4, epochs=1)
    assert (full["train_images"], full["epochs"], full["steps"]) == (16, 2, 4)
    assert (small[0]["train_images"], small[0]["epochs"], small[0]["steps"]) == (4, 4, 4)
    assert int(small.model("plain").optimizer.iterations) == 4
    # Without `steps`, `epochs` passes: the smaller set gets fewer steps.
    assert _run(train=_arrays(4), epochs=2)[0]["steps"] == 2
    # The rule itself, as benchmarks/evidence.py uses it: kakapo_10pct's reference (10x the data) and plain.
    steps = experiment.steps_for_epochs(40, 300, 64)
    assert steps == 200
    assert experiment.fit_budget(steps, math.ceil(3000 / 64), min_epochs=40) == (40, 5)
    assert experiment.fit_budget(steps, math.ceil(300 / 64), min_epochs=40) == (40, 5)
    assert experiment.fit_budget(steps, math.ceil(30 / 64), min_epochs=40) == (200, 1)


def test_callbacks_factory_and_validation_data():
    calls = []

    def callbacks(config, seed):
        calls.append((config, seed))
        return [keras.callbacks.History()]

    _run({"plain": [], "other": []}, seeds=(5,), callbacks=callbacks, validation_data=None)
    assert calls == [("plain", 5), ("other", 5)]


def test_compare_against_hand_computed_numbers():
    records = [{"config": "plain", "seed": s, "accuracy": a, "ece": e, "n": 400}
               for s, (a, e) in enumerate([(0.78, 0.10), (0.82, 0.12)])]
    records += [{"config": "prior", "seed": s, "accuracy": a, "ece": e, "n": 400}
                for s, (a, e) in enumerate([(0.84, 0.05), (0.86, 0.07)])]
    records += [{"config": "close", "seed": s, "accuracy": a, "ece": 0.12, "n": 400}
                for s, a in enumerate([0.82, 0.84])]
    rows = {(r["config"], r["metric"]): r for r in experiment.compare(records, metrics=("accuracy", "ece"))}
    acc = rows[("prior", "accuracy")]
    # base mean 0.80, 2 SE = 2 * sqrt(0.8 * 0.2 / 400) = 0.04; the change is 0.05: beyond.
    assert acc["base_mean"] == pytest.approx(0.80) and acc["mean"] == pytest.approx(0.85)
    assert acc["two_se"] == pytest.approx(0.04) and acc["delta"] == pytest.approx(0.05)
    assert acc["beyond"] is True and acc["better"] is True and acc["seeds"] == 2 and acc["n"] == 400
    assert acc["std"] == pytest.approx(math.sqrt(2) * 0.01)
    close = rows[("close", "accuracy")]
    assert close["delta"] == pytest.approx(0.03) and close["beyond"] is False
    ece = rows[("prior", "ece")]
    assert ece["delta"] == pytest.approx(-0.05) and ece["better"] is True and ece["two_se"] is None
    assert rows[("close", "ece")]["better"] is False
    text = experiment.format_comparison([acc, close])
    assert "0.800 ± 0.028 -> 0.850 ± 0.014 (+0.050); prior helped" in text
    assert "(beyond 2 standard errors = 0.040, n=400)" in text and "(within 2 standard errors = 0.040" in text
    table = experiment.format_table(records, metrics=("accuracy",))
    assert table.splitlines()[2] == "| plain | 0.800 ± 0.028 |"
    with pytest.raises(ValueError, match=r"Expected `base` among .*'plain', 'prior', 'close'.*Received: base='none'"):
        experiment.compare(records, base="none")


@pytest.mark.parametrize("kwargs, match", [
    ({"configs": {}}, r"Expected `configs` to be a non-empty dict.*Received: configs=\{\}"),
    ({"configs": {"plain": "CAMSuppression"}}, r"Expected `configs\['plain'\]` to be a list of priors.*Received: str"),
    ({"seeds": (-1,)}, r"Expected `seeds` to be a non-empty sequence of integers >= 0.*Received: seeds=\[-1\]"),
    ({"epochs": 0}, r"Expected `epochs` to be an integer >= 1. Received: epochs=0"),
    ({"steps": 2.5}, r"Expected `steps` to be an integer >= 1. Received: steps=2.5"),
    ({"schedule": "linear"}, r"Expected `schedule` to be one of \['constant', 'cosine'\]. Received: schedule='linear'"),
    ({"learning_rate": -1.0}, r"Expected `learning_rate` to be a number > 0. Received: learning_rate=-1.0"),
    ({"train": [1, 2]}, r"Expected `train` to be a dict of arrays or a tf.data.Dataset.*Received: train of type list"),
    ({"evaluate": "accuracy"}, r"Expected `evaluate` to be callable. Received: evaluate='accuracy'"),
])
def test_bad_argument_fails_before_any_training(kwargs, match):
    built = []
    args = {"configs": {"plain": []}, "train": _arrays(16), "model": lambda p: built.append(p), **kwargs}
    configs, train = args.pop("configs"), args.pop("train")
    with pytest.raises((ValueError, TypeError), match=match):
        experiment.run(configs, train, _arrays(8), num_classes=2, input_shape=(16, 16, 3), verbose=0, **args)
    assert built == []


def test_a_dataset_of_unknown_length_is_refused_with_steps():
    import tensorflow as tf

    endless = tf.data.Dataset.from_tensor_slices(_arrays(16)).batch(8).repeat()
    with pytest.raises(ValueError, match=r"Expected `train` to be a finite dataset of known length with steps.*"
                                         r"Received: a dataset of cardinality -1"):
        experiment.run({"plain": []}, endless, _arrays(8), num_classes=2, input_shape=(16, 16, 3), steps=4)
