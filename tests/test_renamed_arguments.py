"""One name per concept (issue 14): the 0.1 argument names still work, with a DeprecationWarning.

Every rename goes through ``keras_priors.validation.renamed_arguments``: the old
name warns (naming the owner, the old and the new argument), passing both
raises, and configs saved with the old name load.
"""

import json
import os
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from keras_priors import layers, priors, zoo
from keras_priors.callbacks import CAMImages
from keras_priors.validation import renamed_arguments
from keras_priors.zoo.evaluation import evaluate_classifier, read_result

BATCH = {"image": np.zeros((2, 8, 8, 3), "float32"), "label": np.array([0, 1]),
         "object_mask": np.ones((2, 8, 8, 1), "float32")}

# (owner, make with the old name, make with the new name, old, new)
RENAMES = [
    ("DualInput", lambda: priors.DualInput(part="head_box"), lambda: priors.DualInput(box="head_box"),
     "part", "box"),
    ("DualInput", lambda: priors.DualInput(part_mask="head"), lambda: priors.DualInput(target="head"),
     "part_mask", "target"),
    ("DualInput", lambda: priors.DualInput(box="predicted"), lambda: priors.DualInput(box_source="predicted"),
     "box", "box_source"),
    ("ClassActivationMap", lambda: layers.ClassActivationMap(class_index=1),
     lambda: layers.ClassActivationMap(class_id=1), "class_index", "class_id"),
    ("DualInputFusion", lambda: layers.DualInputFusion(mode="gated"), lambda: layers.DualInputFusion(fusion="gated"),
     "mode", "fusion"),
    ("CAMImages", lambda: CAMImages(BATCH, "unused", mask_key="head"), lambda: CAMImages(BATCH, "unused", mask="head"),
     "mask_key", "mask"),
]


def _config(obj):
    if isinstance(obj, CAMImages):
        return obj.mask
    config = obj.get_config()
    config.pop("name")  # a layer's automatic name differs between two instances
    return config


@pytest.mark.parametrize("owner, old_call, new_call, old, new", RENAMES, ids=lambda v: v if isinstance(v, str) else "")
def test_old_name_warns_and_means_the_new_one(owner, old_call, new_call, old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new name warns about nothing
        fresh = new_call()
    with pytest.warns(DeprecationWarning, match=rf"^{owner}: the argument `{old}` is deprecated; use `{new}`"):
        legacy = old_call()
    assert _config(legacy) == _config(fresh)


@pytest.mark.parametrize("call, message", [
    (lambda: priors.DualInput(part_mask="a", target="b"), r"DualInput: `part_mask` is the deprecated name of "
                                                           r"`target`.*Received: part_mask='a' and target='b'"),
    (lambda: priors.DualInput("b", part="a"), r"Received: part='a' and box='b'"),  # new one positional
    (lambda: priors.DualInput(part="a", box="b"), r"DualInput: `part` .* `box`"),
    (lambda: priors.DualInput(box="oracle", box_source="oracle"), r"DualInput: `box` .* `box_source`"),
    (lambda: layers.ClassActivationMap(class_index=0, class_id=1), r"ClassActivationMap: `class_index` .* `class_id`"),
    (lambda: layers.cam_from_dense(np.ones((1, 2, 2, 3)), None, class_index=0, class_id=1), r"cam_from_dense"),
    (lambda: evaluate_classifier(None, [], mask_key="a", mask="b"), r"evaluate_classifier: `mask_key` .* `mask`"),
])
def test_old_and_new_name_together_is_an_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_dual_input_0_1_and_main_spellings_mix():
    """``part`` (0.1) with ``box="oracle"`` (the unreleased mode argument) still means the oracle box."""
    with pytest.warns(DeprecationWarning) as caught:
        prior = priors.DualInput(part="head_box", box="oracle")
    assert prior.box_source == "oracle" and prior.box == "head_box" and prior.required_keys == ("head_box",)
    assert {str(w.message).split(";")[0] for w in caught} == {
        "DualInput: the argument `box` is deprecated", "DualInput: the argument `part` is deprecated"}


@pytest.mark.parametrize("cls, old_config, attribute, value", [
    (priors.DualInput, {"part": "part_box", "shared": True, "fusion": "concat", "crop_size": None,
                        "name": "dual_input"}, "box", "part_box"),
    (priors.DualInput, {"part": None, "shared": True, "fusion": "concat", "crop_size": None, "name": "dual_input",
                        "box": "predicted", "part_mask": "part_mask", "weight": 1.0, "margin": 0.05,
                        "min_size": 0.15, "mask_floor": 0.5, "box_gradient": False, "levels": 3, "filters": 16,
                        "dice_weight": 1.0, "bce_weight": 1.0}, "box_source", "predicted"),
    (layers.ClassActivationMap, {"name": "cam", "normalize": None, "upsample_size": None, "class_index": 1,
                                 "epsilon": 1e-7}, "class_id", 1),
    (layers.DualInputFusion, {"name": "fusion", "mode": "sum", "projection_dim": None,
                              "kernel_initializer": "glorot_uniform"}, "fusion", "sum"),
])
def test_configs_saved_with_the_old_names_load(cls, old_config, attribute, value):
    with pytest.warns(DeprecationWarning, match=f"^{cls.__name__}: the argument"):
        obj = cls.from_config(dict(old_config))
    assert getattr(obj, attribute) == value
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert cls.from_config(obj.get_config()).get_config() == obj.get_config()  # saved again: new names


def test_old_attribute_names_still_read():
    with pytest.warns(DeprecationWarning, match="DualInput: the attribute `part_mask` is deprecated; use `target`"):
        assert priors.DualInput(target="head").part_mask == "head"
    with pytest.warns(DeprecationWarning, match="DualInput: the attribute `part` is deprecated; use `box`"):
        assert priors.DualInput(box="head_box").part == "head_box"
    with pytest.warns(DeprecationWarning, match="CAMImages: the attribute `mask_key`"):
        assert CAMImages(BATCH, "unused", mask="head").mask_key == "head"


def test_saving_a_model_warns_about_nothing(tmp_path):
    """``.keras`` saving reads every attribute of a layer: no deprecated alias may sit on one."""
    features, kernel = keras.Input((4, 4, 3)), keras.Input((3, 2))
    cam = layers.ClassActivationMap(class_id=1)([features, kernel])
    fused = layers.DualInputFusion(fusion="gated")([keras.layers.Flatten()(cam), keras.layers.Flatten()(cam)])
    model = keras.Model([features, kernel], fused)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(str(tmp_path / "m.keras"))
        keras.saving.load_model(str(tmp_path / "m.keras"))
    assert not [w for w in caught if "is deprecated; use" in str(w.message)]


def _rewrite_config(path, edit):
    """Rewrite ``config.json`` inside a ``.keras`` zip with ``edit(config)``, as an older version would have
    saved it."""
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)


def test_keras_file_saved_with_the_old_names_reloads(tmp_path):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.DualInput(box="part_box"), priors.ConfidencePenalty(beta=0.2)])
    path = str(tmp_path / "old.keras")
    model.save(path)

    def to_0_1(config):
        for prior in config["config"]["priors"]:
            c = prior["config"]
            if prior["class_name"] == "DualInput":
                c["part"] = c.pop("box")

    _rewrite_config(path, to_0_1)
    assert '"part": "part_box"' in zipfile.ZipFile(path).read("config.json").decode()
    with pytest.warns(DeprecationWarning) as caught:
        reloaded = keras.saving.load_model(path, safe_mode=True)
    messages = {str(w.message).split(";")[0] for w in caught if "is deprecated; use" in str(w.message)}
    assert messages == {"DualInput: the argument `part` is deprecated"}
    dual, penalty = reloaded.priors
    assert dual.box == "part_box" and penalty.beta == 0.2
    batch = {"image": np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32"),
             "part_box": np.array([[0.1, 0.1, 0.6, 0.6], [0.2, 0.3, 0.9, 0.8]], "float32")}
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded(batch)["logits"]),
                               ops.convert_to_numpy(model(batch)["logits"]), atol=1e-6)


def test_layer_saved_with_class_index_reloads(tmp_path):
    features, kernel = keras.Input((4, 4, 3)), keras.Input((3, 2))
    model = keras.Model([features, kernel], layers.ClassActivationMap(class_id=1, name="cam")([features, kernel]))
    path = str(tmp_path / "cam.keras")
    model.save(path)

    def to_0_1(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "ClassActivationMap":
                layer["config"]["class_index"] = layer["config"].pop("class_id")

    _rewrite_config(path, to_0_1)
    with pytest.warns(DeprecationWarning, match="ClassActivationMap: the argument `class_index`"):
        reloaded = keras.saving.load_model(path, safe_mode=True)
    assert reloaded.get_layer("cam").class_id == 1


def test_evaluate_classifier_reads_the_mask_key_under_either_name():
    def model(batch, training=False):
        cam = np.zeros((2, 2, 2, 2), "float32")
        cam[:, 0, 0, :] = 1.0  # all evidence in the top-left cell
        return {"logits": np.array([[1.0, 0.0], [0.0, 1.0]], "float32"), "cam": cam}

    mask = np.zeros((2, 8, 8, 1), "float32")
    mask[:, :4, :4] = 1.0
    data = [{**BATCH, "head": mask}]
    new = evaluate_classifier(model, data, mask="head")
    with pytest.warns(DeprecationWarning, match="evaluate_classifier: the argument `mask_key`"):
        old = evaluate_classifier(model, data, mask_key="head")
    assert new["cam_energy_in_mask"] == old["cam_energy_in_mask"] == 1.0
    assert "cam_in_mask" not in new


def test_results_written_before_the_rename_are_read_with_the_new_key(tmp_path):
    assert read_result({"accuracy": 0.5, "cam_in_mask": 0.25}) == {"accuracy": 0.5, "cam_energy_in_mask": 0.25}
    both = {"cam_in_mask": 0.1, "cam_energy_in_mask": 0.2}
    assert read_result(both) == {"cam_energy_in_mask": 0.2}
    bench = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
    sys.path.insert(0, os.path.abspath(bench))
    try:
        import evidence
    finally:
        sys.path.remove(os.path.abspath(bench))
    # An evidence results file in the format written before 0.2 (the key `cam_in_mask`).
    old = tmp_path / "results.jsonl"
    old.write_text("".join(json.dumps({"study": "kakapo", "config": "plain", "seed": seed, "accuracy": 0.55,
                                       "worst_group_accuracy": 0.0, "cam_in_mask": share, "ece": 0.4,
                                       "train_seconds": 30.0}) + "\n"
                           for seed, share in enumerate((0.1, 0.2, 0.3))))
    records = evidence.read_records(str(old))
    assert all("cam_in_mask" not in r for r in records)
    cell = evidence.aggregate(records)["kakapo"]["plain"]["cam_energy_in_mask"]
    assert cell["n"] == 3 and abs(cell["mean"] - 0.2) < 1e-12


def test_the_helper_checks_its_own_arguments():
    with pytest.raises(TypeError, match="has no argument"):
        @renamed_arguments(old="nosuch")
        def f(x=1):
            return x
