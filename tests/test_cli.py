"""The ``keras-priors`` command line: help and defaults on every flag, quiet, one-line errors."""

import argparse
import os
import subprocess
import sys

import pytest

from keras_priors import __version__
from keras_priors.cli import EXPLAIN_METHODS, _configure_logging, main, make_parser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = """
model = "resnet_tiny"
num_classes = 2
input_shape = [32, 32, 3]
[data]
name = "kakapo"
train_samples = 64
test_samples = 32
batch_size = 32
[train]
{train}
"""


def one_line_error(capsys, rc, code, *fragments):
    """The call returned ``code`` and wrote one stderr line holding every fragment, and no traceback."""
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def _actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser.prog, action


def run_python(code):
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_cli_help_and_version_do_not_import_tensorflow():
    out = run_python("import sys\nfrom keras_priors.cli import main\n"
                     "codes = [main(['--help']), main(['--version']), main(['explain', '--help'])]\n"
                     "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert out.splitlines()[-1] == "[0, 0, 0] False False"


def test_every_flag_has_help_and_says_its_default():
    for prog, action in _actions(make_parser()):
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{prog} {name} has no help"
        if action.option_strings and not isinstance(action, argparse._VersionAction):
            assert "default" in action.help or action.required, f"{prog} {name}: help names no default"
            if action.required:
                assert "required" in action.help, f"{prog} {name}"


def test_explain_help_lists_every_registered_method(capsys):
    from keras_priors.explain.registry import EXPLAINERS

    assert sorted(EXPLAIN_METHODS) == sorted(EXPLAINERS)
    assert main(["explain", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("cam, gradcam, gradcam++, scorecam, lcam, layercam, hirescam, xgradcam, eigencam, ablationcam "
            "(default: gradcam)") in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"keras-priors {__version__}"


def test_quiet_by_default_and_verbose_flag(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    _configure_logging(False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    _configure_logging(True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert make_parser().parse_args(["-v", "zoo", "list"]).verbose
    assert make_parser().parse_args(["zoo", "list", "-v"]).verbose
    assert not make_parser().parse_args(["zoo", "list"]).verbose


def test_a_command_prints_no_framework_logs():
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "tensorflow"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, "-m", "keras_priors.cli", "zoo", "list", "resnet_tiny"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert "resnet_tiny" in result.stdout
    assert result.stderr == ""


def test_rf_unknown_model_names_the_zoo(capsys):
    one_line_error(capsys, main(["rf", "nosuchmodel"]), 1, "keras-priors rf: error: Unknown model 'nosuchmodel'",
                   "resnet_tiny", "keras.applications")


def test_train_missing_recipe(capsys, tmp_path):
    one_line_error(capsys, main(["train", "--recipe", str(tmp_path / "missing.toml")]), 1,
                   "--recipe: Expected a recipe TOML file", "missing.toml', no such file")


@pytest.mark.parametrize("epochs", ["0", "-1", "two"])
def test_train_epochs_must_be_positive(capsys, tmp_path, epochs):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(train="epochs = 1"))
    one_line_error(capsys, main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "o"), "--epochs", epochs]),
                   2, "argument --epochs: Expected an integer >= 1. Received:")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("train, fragment", [
    ('learning_rate = "fast"', "Expected train.learning_rate to be a number > 0. Received: train.learning_rate='fast'"),
    ("learning_rate = -0.1", "Received: train.learning_rate=-0.1"),
    ("learning_rate = nan", "Received: train.learning_rate=nan"),
    ("epochs = 0", "Expected `train.epochs` to be an integer >= 1. Received: train.epochs=0"),
])
def test_bad_train_values_in_a_recipe_name_the_key(capsys, tmp_path, train, fragment):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(train=train))
    one_line_error(capsys, main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "o")]), 1, fragment)
    assert not (tmp_path / "o").exists()


def test_train_api_refuses_zero_epochs(tmp_path):
    from keras_priors.training import train_recipe

    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(train="epochs = 1"))
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"Expected `epochs` to be an integer >= 1. Received: epochs={bad}"):
            train_recipe(str(recipe), str(tmp_path / "o"), epochs=bad)
    assert not (tmp_path / "o" / "model.keras").exists()


def test_explain_bad_method_and_missing_images(capsys, tmp_path):
    (tmp_path / "imgs").mkdir()
    one_line_error(capsys, main(["explain", "--model", "m.keras", "--images", str(tmp_path / "imgs"),
                                 "--method", "foo", "--out", str(tmp_path / "o")]), 1,
                   "--method: Expected one of ['cam', 'gradcam', 'gradcam++', 'scorecam', 'lcam', 'layercam', "
                   "'hirescam', 'xgradcam', 'eigencam', 'ablationcam']. Received: 'foo'")
    one_line_error(capsys, main(["explain", "--model", "m.keras", "--images", str(tmp_path / "nope.png")]), 1,
                   "--images: Expected an image file or a folder of images.", "nope.png', no such file or folder")


@pytest.mark.parametrize("command", [
    ["demo", "--quick"],
    ["train", "--recipe", "{recipe}"],
    ["explain", "--model", "m.keras", "--images", "{tmp}"],
])
def test_out_pointing_at_a_file(capsys, tmp_path, command):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(train="epochs = 1"))
    target = tmp_path / "a_file"
    target.write_text("keep me")
    argv = [a.format(recipe=recipe, tmp=tmp_path) for a in command] + ["--out", str(target)]
    one_line_error(capsys, main(argv), 1, "--out: Expected a folder (new or existing).", "a_file', an existing file")
    assert target.read_text() == "keep me"


def test_export_cli_refuses_user_files_unless_overwrite(capsys, tmp_path):
    from keras_priors import zoo

    zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3)).save(str(tmp_path / "m.keras"))
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    for out, fragment in ((user, "not a SavedModel written by keras_priors"), (a_file, "an existing file")):
        one_line_error(capsys, main(["export", "--model", str(tmp_path / "m.keras"), "--out", str(out)]), 1,
                       "keras-priors export: error:", fragment, "--overwrite")
    assert (user / "notes.txt").read_text() == "my notes" and a_file.read_text() == "keep me"
    with pytest.warns(UserWarning, match="moved to"):
        assert main(["export", "--model", str(tmp_path / "m.keras"), "--out", str(user), "--overwrite"]) == 0
    assert os.path.exists(user / "saved_model.pb")
    backups = [n for n in os.listdir(tmp_path) if n.startswith("userdir.replaced-")]
    assert len(backups) == 1 and (tmp_path / backups[0] / "notes.txt").read_text() == "my notes"


@pytest.mark.parity
@pytest.mark.parametrize("format", ["tf_saved_model", "onnx", "litert"])
def test_export_cli_writes_each_format_from_this_backend(capsys, tmp_path, format):
    # From every backend: in process where the backend writes the format, else through a TensorFlow process.
    pytest.importorskip("tensorflow")
    for name in {"onnx": ["tf2onnx", "onnx", "onnxruntime"], "litert": ["ai_edge_litert"]}.get(format, []):
        pytest.importorskip(name)
    import keras
    import numpy as np

    from keras_priors import zoo

    from harness import serve_export

    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    model.save(str(tmp_path / "m.keras"))
    suffix = {"onnx": ".onnx", "litert": ".tflite"}.get(format, "")
    if suffix:
        one_line_error(capsys, main(["export", "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "m"),
                                     "--format", format]), 1,
                       f"keras-priors export: error: Expected `filepath` to end with '{suffix}' for format='{format}'")
    out = str(tmp_path / ("exported" + suffix))
    assert main(["export", "--model", str(tmp_path / "m.keras"), "--out", out, "--format", format]) == 0
    assert f"Exported the classifier of 'resnet_tiny' to {out}" in capsys.readouterr().out
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    served = serve_export(out, format, {"image": x})
    np.testing.assert_allclose(served["logits"], keras.ops.convert_to_numpy(model({"image": x})["logits"]),
                               atol=1e-4, rtol=0)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.keras", "exported" + suffix])


def test_explain_prints_every_metric_with_unit_direction_and_legend(capsys, tmp_path):
    import numpy as np
    import tensorflow as tf

    from keras_priors import zoo
    from keras_priors.explain.metrics import METRIC_LEGENDS

    zoo.build("resnet_tiny", num_classes=2, input_shape=(16, 16, 3)).save(str(tmp_path / "m.keras"))
    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        tf.io.write_file(str(tmp_path / "imgs" / f"a{i}.png"),
                         tf.io.encode_png(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
        mask = np.zeros((16, 16, 3), np.uint8)
        mask[4:12, 4:12] = 255
        tf.io.write_file(str(tmp_path / "masks" / f"a{i}.png"), tf.io.encode_png(mask))
    argv = ["explain", "--model", str(tmp_path / "m.keras"), "--images", str(tmp_path / "imgs"),
            "--out", str(tmp_path / "o")]
    assert main(argv + ["--masks", str(tmp_path / "masks")]) in (0, None)
    out = capsys.readouterr().out
    names = ["average_drop@100", "increase_in_confidence@15", "deletion_auc", "insertion_auc", "road_morf",
             "road_lerf", "road_combined", "pointing_game", "pointing_game_15px", "energy_pointing_game",
             "relevance_mass_accuracy"]
    for name in names:
        _, unit, better = METRIC_LEGENDS[name.split("@")[0]]
        row = [line for line in out.splitlines() if line.startswith(f"| {name} |")]
        assert len(row) == 1 and row[0].endswith(f"| {unit} | {better} |"), (name, row)
        legend = name if "@" not in name else name.split("@")[0] + "@p"
        assert f"- {legend}: " in out and f"{better} is better" in out
    assert "| metric | value | unit | better |" in out
    # Without masks: no localisation rows; --no-road drops ROAD.
    assert main(argv + ["--no-road"]) in (0, None)
    out = capsys.readouterr().out
    assert "| average_drop@15 |" in out and "road_morf" not in out and "pointing_game" not in out
    (tmp_path / "masks" / "a1.png").unlink()
    one_line_error(capsys, main(argv + ["--masks", str(tmp_path / "masks")]), 1,
                   "--masks: Expected a mask named like each image", "'a1.png'")
