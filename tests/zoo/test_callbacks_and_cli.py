import glob
import json
import os

import keras
import numpy as np
import pytest

from keras_priors import callbacks, priors, zoo
from keras_priors.cli import main

from harness import dict_dataset



def test_cam_images_writes_tensorboard_images(kakapo32, tmp_path):
    ds = dict_dataset(kakapo32)
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.CAMSuppression()])
    model.compile(optimizer="adam")
    model.fit(ds, epochs=2, verbose=0, callbacks=[callbacks.CAMImages(ds, log_dir=str(tmp_path), max_images=4)])
    import tensorflow as tf

    events = glob.glob(str(tmp_path / "cam" / "events.out.tfevents.*"))
    assert events
    steps = []
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        for value in event.summary.value:
            if value.tag == "cam/image_true_predicted":
                steps.append(event.step)
                shape = tf.io.decode_png(tf.make_tensor_proto(value.tensor).string_val[2]).shape
    assert steps == [0, 1]
    assert tuple(shape) == (4 * 32, 3 * 32, 3)


def test_cam_overlay_grid_outlines_mask():
    images = np.zeros((1, 8, 8, 3), "float32")
    mask = np.zeros((1, 8, 8), "float32")
    mask[0, 2:6, 2:6] = 1
    grid = callbacks.cam_overlay_grid(images, np.ones((1, 8, 8)), np.ones((1, 8, 8)), mask)
    assert grid.shape == (8, 24, 3)
    assert np.allclose(grid[2, 3], (0, 1, 1))  # outline pixel in cyan
    assert np.allclose(grid[0, 0], 0)


def test_zoo_list_cli(capsys):
    main(["zoo", "list", "resnet_*"])
    out = capsys.readouterr().out
    assert "resnet_tiny" in out and "resnet_small" in out and "vgg16" not in out


def test_demo_quick(tmp_path, capsys):
    from keras_priors.demo import run_demo

    results = run_demo(out_dir=str(tmp_path), quick=True, verbose=0)
    assert set(results) == {"plain", "cam_suppression", "background_swap"}
    for r in results.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["worst_group_accuracy"] <= 1.0
        assert 0.0 <= r["cam_energy_in_mask"] <= 1.0
    assert os.path.exists(tmp_path / "exported" / "saved_model.pb")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert [type(p).__name__ for p in reloaded.priors] == ["BackgroundSwap"]
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]
    assert json.load(open(tmp_path / "results.json"))["plain"]["n"] == 96
    out = capsys.readouterr().out
    assert "| model | test accuracy | worst-group accuracy" in out
    assert "Worst-group accuracy, plain -> background_swap" in out
    # The explain command the demo prints works on what it wrote.
    assert len(glob.glob(str(tmp_path / "images" / "*.png"))) == 8
    assert main(["explain", "--model", str(tmp_path / "model.keras"), "--images", str(tmp_path / "images"),
                 "--method", "gradcam", "--out", str(tmp_path / "explained")]) in (0, None)
    assert len(glob.glob(str(tmp_path / "explained" / "*.png"))) == 8
    assert f"tensorboard --logdir {tmp_path / 'logs'}" in out
    assert glob.glob(str(tmp_path / "logs" / "plain" / "train" / "events.*"))


def test_train_bad_recipe(tmp_path, capsys):
    # User errors are one line on stderr with exit status 1 (main raises them only with -v).
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "resnet_tiny"\nnum_classes = 2\n[data]\nname = "imagenet"\n')
    assert main(["train", "--recipe", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "data.name in ['kakapo']. Received: 'imagenet'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"data.name in \['kakapo'\]. Received: 'imagenet'"):
        main(["train", "-v", "--recipe", str(bad), "--out", str(tmp_path / "o")])
    bad.write_text('model = "resnet_tiny"\nnum_classes = 2\n[data]\nname = "kakapo"\n[[priors]]\ntype = "Nope"\n')
    assert main(["train", "--recipe", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "Unknown prior type" in capsys.readouterr().err


def test_explain_cli_writes_overlays_and_metrics(kakapo32, tmp_path, capsys):
    import tensorflow as tf

    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.MaskDecoder(levels=2)])
    model.save(str(tmp_path / "m.keras"))
    (tmp_path / "imgs").mkdir()
    for i in range(2):
        tf.io.write_file(str(tmp_path / "imgs" / f"b{i}.png"),
                         tf.io.encode_png((kakapo32["image"][i] * 255).astype("uint8")))
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    methods = ("gradcam", "cam", "layercam", "eigencam", "ablationcam")
    for method in methods:
        main(["explain", "--model", str(tmp_path / "m.keras"), "--images", str(tmp_path / "imgs"),
              "--method", method, "--out", str(tmp_path / "out")])
    assert sorted(os.listdir(tmp_path / "out")) == sorted(f"b{i}_{m}.png" for i in range(2) for m in methods)
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out" / "b0_gradcam.png")))
    assert tuple(png.shape) == (32, 32, 3)
    assert "| average_drop@15 |" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["explain", "--model", str(tmp_path / "nope.keras"), "--images", str(tmp_path / "imgs")]) == 1
    assert "--model: Expected a .keras file" in capsys.readouterr().err


def test_data_preview_and_rf_cli(tmp_path, capsys):
    import tensorflow as tf

    main(["data", "preview", "kakapo", "--out", str(tmp_path / "p.png"), "-n", "4"])
    img = tf.io.decode_png(tf.io.read_file(str(tmp_path / "p.png")))
    assert img.shape[-1] in (3, 4) and img.shape[0] > 64
    main(["rf", "resnet_tiny", "--input-shape", "64", "64", "3"])
    out = capsys.readouterr().out
    assert "stage3_block1_add | Add | 8 | 45 | 8 |" in out and "MISALIGNED" not in out
