import os

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import dict_dataset, file_tree, to_numpy

tf = pytest.importorskip("tensorflow")


def _trained(kakapo32, prior_list):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=prior_list)
    model.compile(optimizer="adam")
    model.fit(dict_dataset(kakapo32), epochs=1, verbose=0)
    return model


def test_export_strips_training_heads_and_matches_keras(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8),
                                priors.Auxiliary(num_classes=5)])
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["exported"]  # no temporary folder left behind
    reloaded = tf.saved_model.load(path)
    images = kakapo32["image"][:8]
    served = reloaded.serve({"image": tf.constant(images)})
    expected = model({"image": images}, training=False)
    np.testing.assert_allclose(served["logits"].numpy(), to_numpy(expected["logits"]), atol=1e-5)
    probs = served["probabilities"].numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    cams = reloaded.cam({"image": tf.constant(images)})
    np.testing.assert_allclose(cams["cam"].numpy(), to_numpy(expected["cam"]), atol=1e-5)
    assert cams["cam_upsampled"].shape == (8, 32, 32, 2)
    names = " ".join(v.name for v in reloaded.variables)
    assert "decoder" not in names and "auxiliary" not in names
    n_exported = sum(int(np.prod(v.shape)) for v in reloaded.variables)
    assert n_exported == model.inference_model().count_params()
    assert n_exported < model.count_params()


def test_export_after_keras_round_trip(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.MaskDecoder(levels=2, filters=8)])
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    loaded.export(str(tmp_path / "exported"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    images = kakapo32["image"][:4]
    np.testing.assert_allclose(reloaded.serve({"image": tf.constant(images)})["logits"].numpy(),
                               to_numpy(model({"image": images})["logits"]), atol=1e-5)


def test_dual_input_export_takes_the_box(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.DualInput()])
    model.export(str(tmp_path / "dual"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "dual"))
    batch = {"image": kakapo32["image"][:4], "part_box": kakapo32["part_box"][:4]}
    out = reloaded.serve({k: tf.constant(v) for k, v in batch.items()})
    np.testing.assert_allclose(out["logits"].numpy(), to_numpy(model(batch)["logits"]), atol=1e-5)


@pytest.mark.parametrize("step", ["write", "swap"])
def test_failed_export_leaves_nothing(kakapo32, tmp_path, monkeypatch, step):
    # The failures are injected at what keras_priors itself calls, so that every SavedModel export reaches them
    # whatever ran before in the process (patching tf.saved_model.save did not: after an ONNX export Keras's
    # archive no longer reached it). "write": the archive keras_priors gets from keras.export.ExportArchive()
    # fails half-way through writing the SavedModel into the temporary folder; "swap": the finished folder
    # fails to be renamed into place.
    import keras_priors.zoo.export as export_mod

    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    calls = []

    def boom(folder, *a, **k):
        os.makedirs(os.path.join(folder, "variables"), exist_ok=True)  # a half-written SavedModel
        calls.append(folder)
        raise RuntimeError("disk full")

    if step == "write" and keras.backend.backend() not in export_mod._BACKENDS["tf_saved_model"]:
        # torch: a TensorFlow child process writes the SavedModel into a private folder beside the target
        from keras_priors.zoo import _tf_export

        monkeypatch.setattr(_tf_export, "export_through_tensorflow",
                            lambda model, work, *a, **k: boom(os.path.join(work, "export")))
    elif step == "write":
        real = keras.export.ExportArchive

        def failing_archive(*a, **k):
            archive = real(*a, **k)  # a backend class (TFExportArchive): its write_out is replaced on the instance
            archive.write_out = boom
            return archive

        monkeypatch.setattr(keras.export, "ExportArchive", failing_archive)
    else:
        monkeypatch.setattr(export_mod, "_swap_into_place", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        model.export(str(tmp_path / "exported"), verbose=False)
    assert len(calls) == 1 and os.path.relpath(calls[0], tmp_path).startswith(".export-")  # written beside the target
    assert os.listdir(tmp_path) == []


# === Export never deletes a user's files ===
def _tiny_model():
    return zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))


def test_export_refuses_a_non_empty_user_folder(tmp_path):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError,
                       match=r"filepath=.*userdir.*not a SavedModel written by keras_priors.*overwrite"):
        _tiny_model().export(str(user), verbose=False)
    assert file_tree(str(user)) == {"notes.txt": b"my notes"}
    assert sorted(os.listdir(tmp_path)) == ["userdir"]  # no temporary folder either


def test_export_refuses_an_existing_file(tmp_path):
    target = tmp_path / "model_out"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="an existing file"):
        _tiny_model().export(str(target), verbose=False)
    assert target.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["model_out"]


def test_export_writes_a_marker_and_replaces_its_own_export(tmp_path):
    model = _tiny_model()
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    from keras_priors.zoo.export import MARKER

    assert MARKER in os.listdir(path)
    first = file_tree(path)
    model.export(path, verbose=False)  # an earlier export of ours: replaced without overwrite
    assert sorted(os.listdir(tmp_path)) == ["exported"]
    assert set(file_tree(path)) == set(first)
    tf.saved_model.load(path)


def test_export_into_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _tiny_model().export(str(tmp_path / "empty"), verbose=False)
    assert "saved_model.pb" in os.listdir(tmp_path / "empty")
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_user_file_added_to_an_export_makes_it_foreign(tmp_path):
    model = _tiny_model()
    path = tmp_path / "exported"
    model.export(str(path), verbose=False)
    (path / "README.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        model.export(str(path), verbose=False)
    assert (path / "README.txt").read_text() == "mine"


def test_overwrite_moves_a_user_folder_aside_never_deletes(tmp_path):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    with pytest.warns(UserWarning, match="moved to .*userdir.replaced-"):
        _tiny_model().export(str(user), verbose=False, overwrite=True)
    assert "saved_model.pb" in os.listdir(user)
    backups = [n for n in os.listdir(tmp_path) if n.startswith("userdir.replaced-")]
    assert len(backups) == 1 and sorted(os.listdir(tmp_path)) == sorted(["userdir"] + backups)
    assert file_tree(str(tmp_path / backups[0])) == {"notes.txt": b"my notes"}


def test_overwrite_of_a_file_keeps_it_as_a_backup(tmp_path):
    target = tmp_path / "model_out"
    target.write_text("precious")
    with pytest.warns(UserWarning):
        _tiny_model().export(str(target), verbose=False, overwrite=True)
    assert os.path.isdir(target)
    backups = [n for n in os.listdir(tmp_path) if n.startswith("model_out.replaced-")]
    assert [(tmp_path / b).read_text() for b in backups] == ["precious"]


def test_failed_swap_restores_the_previous_export(tmp_path, monkeypatch):
    model = _tiny_model()
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    before = file_tree(path)
    import keras_priors.zoo.export as export_mod

    real_replace = os.replace

    def flaky(src, dst):
        if dst == path and not src.endswith(".old"):  # the new export into place, not the old one back
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(export_mod.os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        model.export(path, verbose=False)
    assert file_tree(path) == before
    assert sorted(os.listdir(tmp_path)) == ["exported"]
