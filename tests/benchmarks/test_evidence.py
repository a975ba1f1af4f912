"""The evidence benchmark (benchmarks/evidence.py): its bookkeeping, and a smoke run as in CI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

BENCH_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
sys.path.insert(0, os.path.abspath(BENCH_DIR))

import evidence  # noqa: E402


def _record(study, config, seed, **metrics):
    return {"study": study, "config": config, "seed": seed, "train_seconds": 1.0, **metrics}


def test_aggregate_mean_and_sample_std():
    records = [_record("kakapo", "plain", s, accuracy=a, worst_group_accuracy=w, ece=0.2)
               for s, (a, w) in enumerate([(0.5, 0.1), (0.7, 0.3), (0.6, 0.2)])]
    records.append(_record("kakapo", "reference", 0, accuracy=0.9, worst_group_accuracy=float("nan")))
    agg = evidence.aggregate(records)
    cell = agg["kakapo"]["plain"]["accuracy"]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(0.6) and cell["std"] == pytest.approx(0.1)
    assert agg["kakapo"]["plain"]["worst_group_accuracy"]["mean"] == pytest.approx(0.2)
    # NaN (a metric the data cannot give) is left out, not averaged in.
    assert "worst_group_accuracy" not in agg["kakapo"]["reference"]
    assert agg["kakapo"]["reference"]["accuracy"]["std"] == 0.0


def test_targets_met_and_missed():
    agg = evidence.aggregate([
        _record("decoy_mlp", "plain", 0, accuracy=0.55),
        _record("decoy_mlp", "input_gradient", 0, accuracy=0.86),
        _record("decoy_mlp", "reference", 0, accuracy=0.865),
        _record("decoy_fmnist", "plain", 0, accuracy=0.5),
        _record("decoy_fmnist", "cam_suppression", 0, accuracy=0.80),
        _record("decoy_fmnist", "background_swap", 0, accuracy=0.45),
        _record("decoy_fmnist", "reference", 0, accuracy=0.905),
        _record("kakapo", "plain", 0, worst_group_accuracy=0.0, accuracy=0.5),
        _record("kakapo", "background_swap", 0, worst_group_accuracy=0.86, accuracy=0.9),
        _record("kakapo", "reference", 0, worst_group_accuracy=0.90, accuracy=0.95),
    ])
    rows = {r["target"]: r for r in evidence.check_targets(agg)}
    assert rows["Decoy-FMNIST (RRR construction), MLP: RRR within 1 point of the clean-trained MLP"]["met"] is True
    cnn = rows["Decoy-FMNIST, CNN: the best mask prior within 1 point of the clean-trained CNN"]
    assert cnn["met"] is False and cnn["measured"].startswith("cam_suppression 80.0 %")
    kakapo = rows["Kakapo: worst-group accuracy within 5 points of the shortcut-free reference, "
                  "no test-time annotation"]
    assert kakapo["met"] is True and kakapo["measured"].startswith("background_swap")
    below = rows["decoy_fmnist: no prior's test accuracy below plain"]
    assert below["met"] is False and "background_swap 45.0 %" in below["measured"]
    assert rows["kakapo: no prior's test accuracy below plain"]["met"] is True


def test_oracle_configurations_never_meet_a_target(monkeypatch):
    study = evidence.STUDIES["kakapo"]
    oracle = evidence.Config("oracle_box", evidence._none, oracle=True)
    monkeypatch.setitem(evidence.STUDIES, "kakapo",
                        evidence.dataclasses.replace(study, configs=study.configs + (oracle,)))
    agg = evidence.aggregate([
        _record("kakapo", "plain", 0, worst_group_accuracy=0.0, accuracy=0.5),
        _record("kakapo", "oracle_box", 0, worst_group_accuracy=0.95, accuracy=0.97),
        _record("kakapo", "reference", 0, worst_group_accuracy=0.90, accuracy=0.95),
    ])
    rows = [r["target"] for r in evidence.check_targets(agg)]
    assert not any(t.startswith("Kakapo: worst-group") for t in rows)
    text = evidence.format_markdown(agg, [], {"command": "c", "date": "d", "machine": "m", "backend": "b",
                                              "size": "s", "seeds": "1", "runs": 3, "minutes": 1.0})
    assert "| oracle_box |" in text and "**ORACLE**" in text


def test_dual_input_rows_name_the_oracle_and_old_records_map_to_it(tmp_path):
    path = tmp_path / "results.jsonl"
    old = [_record("kakapo", "dual_input", s, accuracy=0.9, worst_group_accuracy=0.5) for s in range(2)]
    new = [_record("kakapo", "dual_input_predicted", 0, accuracy=0.8, worst_group_accuracy=0.3),
           _record("kakapo", "plain", 0, accuracy=0.6, worst_group_accuracy=0.0)]
    path.write_text("".join(json.dumps(r) + "\n" for r in old + new))
    records = evidence.read_records(str(path))
    assert [r["config"] for r in records] == ["dual_input_oracle"] * 2 + ["dual_input_predicted", "plain"]
    agg = evidence.aggregate(records)
    meta = {"command": "x", "date": "d", "machine": "m", "backend": "b", "size": "s", "seeds": "1", "runs": 4,
            "minutes": 1.0}
    text = evidence.format_markdown(agg, evidence.check_targets(agg), meta)
    assert "| DualInput (oracle box) | 0.900 ± 0.000 |" in text and "**ORACLE**" in text
    assert "| DualInput (predicted box) | 0.800 |" in text
    # The predicted box needs no annotation at test time, so it counts; the oracle never does.
    assert "no test-time annotation | dual_input_predicted 30.0 %" not in text  # no reference ran: no row
    rows = {r["target"]: r for r in evidence.check_targets(evidence.aggregate(
        records + [_record("kakapo", "reference", 0, accuracy=0.95, worst_group_accuracy=0.9)]))}
    kakapo = rows["Kakapo: worst-group accuracy within 5 points of the shortcut-free reference, "
                  "no test-time annotation"]
    assert kakapo["measured"].startswith("dual_input_predicted 30.0 %") and kakapo["met"] is False
    for study in ("kakapo", "kakapo_10pct"):
        names = [c.name for c in evidence.STUDIES[study].configs]
        assert "dual_input_oracle" in names and "dual_input_predicted" in names and "dual_input" not in names
    # the old name still selects the oracle rows
    with pytest.raises(ValueError, match=r"Received: \['nope'\]"):
        evidence.run(size="smoke", studies=["kakapo"], configs=["dual_input", "nope"], out=str(tmp_path))


def test_validation_split_instead_of_test():
    study = evidence.STUDIES["kakapo"]
    size = {**evidence.SIZES["smoke"], "train": 16, "test": 8}
    _, val = evidence.load_study_data(study, size, 0, True, 1.0, eval_split="val")
    _, test = evidence.load_study_data(study, size, 0, True, 1.0)
    assert len(val["label"]) == len(test["label"]) == 8
    assert not np.array_equal(val["image"], test["image"])
    with pytest.raises(ValueError, match=r"Expected `eval_split` 'test' or 'val'. Received: eval_split='train'"):
        evidence.load_study_data(study, size, 0, True, 1.0, eval_split="train")


def test_a_record_does_not_depend_on_the_run_before_it():
    """The same study, configuration and seed give the same record whatever ran before in the process.

    Before, the data pipeline was made before the seed was set, so its shuffle order followed the global seed
    the previous run had left behind.
    """
    import keras

    study = evidence.STUDIES["kakapo"]
    config = next(c for c in study.configs if c.name == "plain")
    size = {**evidence.SIZES["smoke"], "train": 32, "test": 16, "batch_size": 8}
    records = []
    for previous_seed in (0, 5):
        keras.utils.set_random_seed(previous_seed)  # what an earlier run in this process leaves behind
        record = evidence.run_one(study, config, 0, size)
        records.append({k: v for k, v in record.items() if not k.endswith("_seconds")})
    assert records[0] == records[1]


def test_fashion_mnist_validation_split_is_held_out_of_training(tmp_path):
    """The val split is the training file's tail, with test-like random shades; training draws from its head."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))
    from test_fashion_mnist import make_idx

    make_idx(str(tmp_path), n_train=30, n_test=20)
    study = evidence.STUDIES["decoy_fmnist"]
    size = {**evidence.SIZES["smoke"], "train": 1000, "test": 1000}
    old_start, evidence.FMNIST_VAL_START = evidence.FMNIST_VAL_START, 24
    try:
        train, val = evidence.load_study_data(study, size, 0, True, 1.0, str(tmp_path), eval_split="val")
        _, test = evidence.load_study_data(study, size, 0, True, 1.0, str(tmp_path))
    finally:
        evidence.FMNIST_VAL_START = old_start
    assert len(train["label"]) == 24 and len(val["label"]) == 6 and len(test["label"]) == 20
    # The labels of the fake files cycle 0..9 in file order: the val split holds the tail's (4, 5, ..., 9).
    np.testing.assert_array_equal(val["label"], np.arange(24, 30) % 10)
    np.testing.assert_array_equal(train["label"], np.arange(24) % 10)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="size='huge'"):
        evidence.run(size="huge", out=str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected `studies` among .* Received: \['cifar'\]"):
        evidence.run(size="smoke", studies=["cifar"], out=str(tmp_path))
    with pytest.raises(ValueError, match=r"Received: \['nope'\]"):
        evidence.run(size="smoke", studies=["kakapo"], configs=["nope"], out=str(tmp_path))
    with pytest.raises(ValueError, match="seeds=0"):
        evidence.run(size="smoke", seeds=0, out=str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected `workers` an int >= 1. Received: workers=0"):
        evidence.run(size="smoke", workers=0, out=str(tmp_path))


def test_smoke_run_writes_table_plot_and_resumes(tmp_path):
    out = str(tmp_path)
    agg = evidence.run(size="smoke", seeds=2, studies=["kakapo", "kakapo_10pct"],
                       configs=["background_swap", "auxiliary"], out=out)
    assert set(agg) == {"kakapo", "kakapo_10pct"}
    assert set(agg["kakapo"]) == {"background_swap"} and set(agg["kakapo_10pct"]) == {"auxiliary"}
    lines = open(os.path.join(out, "results.jsonl")).read().splitlines()
    assert len(lines) == 4
    for line in lines:
        r = json.loads(line)
        assert 0.0 <= r["accuracy"] <= 1.0 and r["train_images"] > 0
    text = open(os.path.join(out, "RESULTS.md")).read()
    assert "| background_swap |" in text and "| auxiliary |" in text and " ± " in text
    assert "Targets" not in text  # no plain run, so no target can be judged
    pytest.importorskip("matplotlib")
    assert os.path.getsize(os.path.join(out, "results.png")) > 1000
    # A resumed run with the same plan has nothing left to do and keeps every record.
    evidence.run(size="smoke", seeds=2, studies=["kakapo", "kakapo_10pct"],
                 configs=["background_swap", "auxiliary"], out=out, resume=True)
    assert len(open(os.path.join(out, "results.jsonl")).read().splitlines()) == 4


def test_cli_bench_lists_and_rejects(tmp_path, capsys):
    import re

    from keras_priors import cli

    assert cli.main(["bench", "nope"]) == 1  # a one-line error, no traceback
    assert re.search(r"keras-priors bench: error: Expected a benchmark name among .*evidence.* Received: 'nope'",
                     capsys.readouterr().err)
    proc = subprocess.run([sys.executable, "-m", "keras_priors.cli", "bench", "evidence", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--size" in proc.stdout and "--resume" in proc.stdout


def test_worker_processes_write_every_run(tmp_path):
    # Two spawned worker processes of one thread each, as `keras-priors bench evidence` uses on 2 cores.
    out = str(tmp_path)
    agg = evidence.run(size="smoke", seeds=2, studies=["kakapo_10pct"], configs=["plain"], out=out, workers=2)
    assert agg["kakapo_10pct"]["plain"]["accuracy"]["n"] == 2
    records = [json.loads(line) for line in open(os.path.join(out, "results.jsonl")).read().splitlines()]
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert all(r["run_seconds"] >= r["train_seconds"] > 0 for r in records)
    assert "trained 2 run(s) in" in open(os.path.join(out, "RESULTS.md")).read()
    assert "2 at a time" in open(os.path.join(out, "RESULTS.md")).read()
