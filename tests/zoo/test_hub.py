"""keras-hub backbones in the zoo: built from architecture arguments, weights from a local preset."""

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from keras_priors import priors, zoo  # noqa: E402
from keras_priors.data.kakapo import make_kakapo  # noqa: E402
from keras_priors.zoo import hub  # noqa: E402

from harness import dict_dataset  # noqa: E402


def test_hub_entries_are_listed_with_their_records():
    names = zoo.list_models("hub_*")
    assert names == ["hub_densenet_121", "hub_mit_b0", "hub_resnet_18", "hub_resnet_50"]
    spec = zoo.get_spec("hub_resnet_50")
    assert spec.family == "keras-hub" and spec.preprocessing == "torch"
    assert spec.default_input_shape == (224, 224, 3) and spec.feature_maps == ("P2", "P3", "P4", "P5")
    assert "resnet_50_imagenet" in spec.pretrained


def _assert_named_by_stride(backbone, name):
    shapes = {k: tuple(v.shape[1:3]) for k, v in backbone.output.items()}
    assert shapes == {"P2": (16, 16), "P3": (8, 8), "P4": (4, 4), "P5": (2, 2)}
    assert tuple(backbone.output) == zoo.get_spec(name).feature_maps


def test_feature_maps_are_named_by_stride():
    _assert_named_by_stride(zoo.get_spec("hub_resnet_18").builder((64, 64, 3)), "hub_resnet_18")


def test_build_and_fit_one_step_with_a_cam_prior():
    data = make_kakapo(8, image_size=32, seed=1)
    model = zoo.build("hub_resnet_18", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.CAMSuppression(classes=[0], mask="object_mask")])
    assert model.network.output["cam"].shape[1:3] == (1, 1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # one step: tracing costs more
    before = np.asarray(model.backbone.get_layer("conv1_conv").kernel).copy()
    history = model.fit(dict_dataset(data, batch_size=8), epochs=1, verbose=0)
    assert np.isfinite(history.history["cam_suppression_loss"][-1])
    assert not np.allclose(before, np.asarray(model.backbone.get_layer("conv1_conv").kernel))


def test_pyramid_levels_are_renamed_by_stride():
    # keras-hub's MiT calls its stride-4 map "P1"; the zoo names maps by stride (P<k>: stride 2**k).
    inp = keras.Input((64, 64, 3))
    p1 = keras.layers.Conv2D(4, 4, strides=4)(inp)
    p2 = keras.layers.Conv2D(4, 2, strides=2)(p1)
    fake = keras.Model(inp, p2)
    fake.pyramid_outputs = {"P1": p1, "P2": p2}
    assert {k: v.shape[1] for k, v in hub.pyramid_from_hub(fake, (64, 64, 3)).output.items()} == {"P2": 16, "P3": 8}
    with pytest.raises(ValueError, match="pyramid_outputs"):
        hub.pyramid_from_hub(keras.Model(inp, p2), (64, 64, 3))


def test_local_preset_round_trip(tmp_path):
    source = keras_hub.models.ResNetBackbone(**hub.LAYOUTS["resnet_18"][1], image_shape=(32, 32, 3))
    preset = str(tmp_path / "resnet_18_preset")
    source.save_to_preset(preset)
    model = zoo.build("hub_resnet_18", num_classes=3, input_shape=(32, 32, 3),
                      priors=[priors.Pretrained(preset, freeze_epochs=1)])
    expected = hub.pyramid_from_hub(source, (32, 32, 3)).weights
    assert len(model.backbone.weights) == len(expected) > 50
    for a, b in zip(expected, model.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A preset of another architecture fails, naming the preset.
    with pytest.raises(ValueError, match="does not fit the backbone"):
        zoo.build("hub_resnet_50", num_classes=3, input_shape=(32, 32, 3), weights=preset)
    with pytest.raises(FileNotFoundError, match="no_such_preset"):
        zoo.build("hub_resnet_18", num_classes=3, input_shape=(32, 32, 3), weights=str(tmp_path / "no_such_preset"))


def test_listing_the_zoo_does_not_import_keras_hub():
    # keras_hub takes seconds to import: listing finds it on the path, building imports it.
    import subprocess
    import sys

    code = ("import sys, keras_priors as kp; names = kp.zoo.list_models('hub_*'); "
            "assert 'hub_resnet_18' in names, names; assert 'keras_hub' not in sys.modules; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_broken_keras_hub_is_a_clear_error_at_build_time(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now raises ImportError
    with pytest.raises(ImportError, match="Expected keras_hub to import for the zoo's hub_\\* models"):
        zoo.build("hub_resnet_18", num_classes=2, input_shape=(32, 32, 3))
