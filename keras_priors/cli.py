"""``keras-priors``: demo, train, evaluate, export, zoo, data, explain, rf and bench from the shell.

Nothing heavy is imported before the arguments are parsed: ``--help`` and
``--version`` never load TensorFlow. Framework logs are silenced unless ``-v``
is given, and a user error is printed as one line (``-v`` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from keras_priors import __version__

#: The explainers ``explain --method`` accepts (``keras_priors.explain.registry.EXPLAINERS``; a test keeps them equal).
EXPLAIN_METHODS = ("cam", "gradcam", "gradcam++", "scorecam", "lcam", "layercam", "hirescam", "xgradcam", "eigencam",
                   "ablationcam")


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


def _configure_logging(verbose: bool) -> None:
    """Quiet TensorFlow/absl (C++ and Python) unless ``verbose``; effective only before TensorFlow is imported."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    # C++ lines after the import, ERROR included: "failed call to cuInit" on a machine without a GPU and oneDNN
    # fallbacks are not actionable; a real failure still raises a Python exception.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Keras 3 warns on every fit on a tf.data.Dataset, whose order the pipeline already shuffles.
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored", category=UserWarning)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass


def _import_frameworks(args) -> None:
    """Import TensorFlow, quietly unless ``args.verbose``.

    TensorFlow's C++ libraries write INFO lines (oneDNN, CUDA drivers, CPU
    features) to file descriptor 2 while they load, before absl's log level
    (``TF_CPP_MIN_LOG_LEVEL``) applies; so stderr is captured during the
    import and shown only if the import fails.
    """
    if args.verbose or "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            if e.name != "tensorflow":  # without TensorFlow (another backend) there is nothing to quieten
                failed = True
                raise
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                sys.stderr.flush()


def _existing_out_dir(path: str, flag: str = "--out") -> str:
    """``path`` if it is a folder or does not exist yet; a file there is an error."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{flag}: Expected a folder (new or existing). Received: {path!r}, an existing file")
    return path


def _cmd_demo(args):
    _existing_out_dir(args.out)
    _import_frameworks(args)
    from keras_priors.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick, epochs=args.epochs, seed=args.seed)


def _cmd_zoo_list(args):
    _import_frameworks(args)
    from keras_priors.zoo import get_spec, list_models

    print(f"{'name':<18} {'input':<13} {'family':<20} description")
    for name in list_models(args.pattern):
        s = get_spec(name)
        print(f"{name:<18} {'x'.join(map(str, s.default_input_shape)):<13} {s.family:<20} {s.description}")


def _cmd_data_preview(args):
    _import_frameworks(args)
    from keras_priors.data import preview_kakapo

    path = preview_kakapo(args.out, n=args.n, seed=args.seed, split=args.split)
    print(f"Wrote {path}")


def _cmd_train(args):
    if not os.path.isfile(args.recipe):
        raise CLIError(f"--recipe: Expected a recipe TOML file (e.g. zoo/kakapo_resnet_tiny_cam.toml). "
                       f"Received: {args.recipe!r}, {'a folder' if os.path.isdir(args.recipe) else 'no such file'}")
    _existing_out_dir(args.out)
    _import_frameworks(args)
    from keras_priors.training import train_recipe

    train_recipe(args.recipe, args.out, epochs=args.epochs, quick=args.quick, deterministic=args.deterministic,
                 allow_recipe_change=args.allow_recipe_change)


def _load(path):
    import keras

    if not os.path.isfile(path):
        raise CLIError("--model: Expected a .keras file (e.g. written by train or demo). "
                       f"Received: {path!r}, no such file")
    return keras.saving.load_model(path)


def _cmd_evaluate(args):
    _import_frameworks(args)
    from keras_priors import data
    from keras_priors.zoo.evaluation import evaluate_classifier

    model = _load(args.model)
    size = model.network.input["image"].shape[1]
    test = data.kakapo(split="test", image_size=size, num_samples=args.samples, batch_size=64, seed=args.seed)
    r = evaluate_classifier(model, test)
    for k in ("n", "accuracy", "worst_group_accuracy", "cam_energy_in_mask", "ece"):
        print(f"{k:<22} {r[k]:.4f}" if k != "n" else f"{k:<22} {r[k]}")


def _cmd_export(args):
    _import_frameworks(args)
    model = _load(args.model)
    try:
        model.export(args.out, format=args.format, overwrite=args.overwrite)
    except ImportError as e:  # an optional package of the format is missing
        raise CLIError(str(e)) from e


def _read_images(path, size):
    files = sorted(os.path.join(path, f) for f in os.listdir(path)) if os.path.isdir(path) else [path]
    files = [f for f in files if f.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise CLIError(f"--images: Expected .png/.jpg/.bmp/.gif images. Received: {path!r}, which has none")
    return _read_images_from(files, size, "--images")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _read_images_from(files, size, flag):
    import numpy as np
    import tensorflow as tf

    images = []
    for f in files:
        try:
            img = tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as e:
            raise CLIError(f"{flag}: cannot decode {f!r}: {e.message}") from None
        images.append(tf.image.resize(tf.cast(img, "float32") / 255.0, size).numpy())
    return files, np.stack(images)


def _classifier_of(model):
    """(logits model taking images, zoo model or None): explainers need one image input and one output."""
    from keras_priors.zoo import logits_classifier

    try:
        return logits_classifier(model), (model if hasattr(model, "inference_model") else None)
    except ValueError as e:
        raise CLIError(f"--model: explainers need a single-input classifier. {e}") from None


def _zoo_cam(model, images):
    """CAM of the predicted class straight from a zoo model's ``cam`` output, in [0, 1] at image size."""
    import numpy as np

    from keras_priors.callbacks.cam_images import class_maps
    from keras_priors.explain._utils import normalize_maps

    # class_maps returns the predicted class's map whatever the labels; they only fill its true-class map.
    _, cam_pred, _ = class_maps(model, {"image": images, "label": np.zeros(len(images), "int64")})
    return normalize_maps(np.maximum(cam_pred, 0))


def _cmd_explain(args):
    if not os.path.exists(args.images):
        raise CLIError("--images: Expected an image file or a folder of images. "
                       f"Received: {args.images!r}, no such file or folder")
    _existing_out_dir(args.out)
    _import_frameworks(args)
    import tensorflow as tf

    from keras_priors._atomic import write_atomic
    from keras_priors.explain import get_explainer, overlay

    try:
        explainer = get_explainer(args.method)
    except ValueError:
        raise CLIError(f"--method: Expected one of {list(EXPLAIN_METHODS)}. Received: {args.method!r}") from None
    model = _load(args.model)
    classifier, zoo_model = _classifier_of(model)
    size = tuple(classifier.inputs[0].shape[1:3])
    files, images = _read_images(args.images, size)
    masks = _read_masks(args.masks, files, size) if args.masks is not None else None
    if args.method.lower() == "cam" and zoo_model is not None:
        maps = _zoo_cam(zoo_model, images)
    else:
        maps = explainer(classifier, layer=args.layer)(images)
    os.makedirs(args.out, exist_ok=True)
    for f, img, m in zip(files, images, maps):
        name = os.path.splitext(os.path.basename(f))[0]
        dest = os.path.join(args.out, f"{name}_{args.method}.png")
        write_atomic(dest, tf.io.encode_png(overlay(img, m)).numpy())
    scores = explain_scores(classifier, images, maps, masks, road=not args.no_road)
    print(f"Wrote {len(files)} overlay(s) to {os.path.abspath(args.out)}")
    print(metrics_table(scores, len(files)))


def _read_masks(path, files, size):
    """Masks for ``files``: ``path`` is one mask image (one input image) or a folder of masks named as the images."""
    import numpy as np

    if os.path.isdir(path):
        by_stem = {os.path.splitext(f)[0]: os.path.join(path, f) for f in os.listdir(path)}
        chosen = []
        for f in files:
            stem = os.path.splitext(os.path.basename(f))[0]
            if stem not in by_stem:
                raise CLIError(f"--masks: Expected a mask named like each image in {path!r}. "
                               f"Received: none for {os.path.basename(f)!r}")
            chosen.append(by_stem[stem])
    elif os.path.isfile(path) and len(files) == 1:
        chosen = [path]
    else:
        raise CLIError(f"--masks: Expected a folder of masks named as the images (or one mask file for one image). "
                       f"Received: {path!r} for {len(files)} image(s)")
    _, masks = _read_images_from(chosen, size, "--masks")
    return (masks.mean(axis=-1) > 0.5).astype(np.float32)


def explain_scores(classifier, images, maps, masks=None, road: bool = True) -> dict:
    """The ``explain`` command's metrics as ``{name: value}`` (names as in :func:`metric_legend`), averaged
    over images."""
    import numpy as np

    from keras_priors.explain import metrics as m

    scores = m.average_drop_increase_confidence(classifier, images, maps)
    di = m.deletion_insertion(classifier, images, maps)
    scores.update(deletion_auc=float(di["deletion_auc"].mean()), insertion_auc=float(di["insertion_auc"].mean()))
    if road:
        r = m.road(classifier, images, maps)
        scores.update(road_morf=float(r["morf"].mean()), road_lerf=float(r["lerf"].mean()),
                      road_combined=float(r["combined"].mean()))
    if masks is not None:
        # Zhang et al.'s 15 px are at 224x224: scaled to the input size.
        tolerance = m.POINTING_GAME_TOLERANCE * min(images.shape[1:3]) / 224
        scores.update(
            pointing_game=100.0 * float(m.pointing_game(maps, masks).mean()),
            pointing_game_15px=100.0 * float(m.pointing_game(maps, masks, tolerance=tolerance).mean()),
            energy_pointing_game=float(np.mean(m.energy_pointing_game(maps, masks=masks))),
            relevance_mass_accuracy=float(np.nanmean(m.relevance_mass_accuracy(maps, masks))),
        )
    return scores


def metrics_table(scores: dict, num_images: int) -> str:
    """A Markdown table (metric, value, unit, which way is better) and one legend line per metric."""
    from keras_priors.explain.metrics import METRIC_LEGENDS, metric_legend

    lines = [f"Metrics, mean over {num_images} image(s) (target: the predicted class):", "",
             "| metric | value | unit | better |", "|---|---|---|---|"]
    for k, v in scores.items():
        _, unit, better = METRIC_LEGENDS[k.split("@", 1)[0]]
        lines.append(f"| {k} | {float(v):.3f} | {unit} | {better} |")
    families = dict.fromkeys(k if "@" not in k else k.split("@", 1)[0] + "@p" for k in scores)
    lines += ["", "Legend (p = % of the map's area kept):"] + [f"- {metric_legend(k)}" for k in families]
    return "\n".join(lines)


def _cmd_rf(args):
    _import_frameworks(args)
    from keras_priors.receptive_field import rf_table_for

    input_shape = tuple(args.input_shape) if args.input_shape else None
    print(rf_table_for(args.model, input_shape=input_shape))
    if args.erf:
        from keras_priors.receptive_field import erf_summary_for

        try:
            text = erf_summary_for(args.model, layer=args.erf_layer, num_samples=args.erf_samples,
                                   input_shape=input_shape)
        except ValueError as e:
            raise CLIError(f"--erf: {e}") from None
        print()
        print(text)


def benchmarks_dir() -> str:
    """The repository's ``benchmarks/`` folder (benchmarks live beside the package, not inside it)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _cmd_bench(args):
    import runpy

    folder = benchmarks_dir()
    available = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")) \
        if os.path.isdir(folder) else []
    if not available:
        raise CLIError(f"Expected the benchmarks/ folder of a source checkout at {folder}. "
                       "Received: no such folder (install with `pip install -e .` from a clone).")
    if args.name not in available:
        raise CLIError(f"Expected a benchmark name among {available}. Received: {args.name!r}")
    sys.argv = [f"keras-priors bench {args.name}", *args.args]
    runpy.run_path(os.path.join(folder, args.name + ".py"), run_name="__main__")


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected an integer >= 1. Received: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"Expected an integer >= 1. Received: {value}")
    return value


def make_parser() -> argparse.ArgumentParser:
    # -v works before or after the command; SUPPRESS keeps a sub-command's default from hiding the top-level flag.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="show TensorFlow/absl logs and full tracebacks (default: quiet)")

    p = _Parser(
        prog="keras-priors",
        description="Put what you know about images into Keras classifiers, and see what they look at.",
    )
    # Its own action (not the shared one): set_defaults would change the shared action's default too.
    p.add_argument("-v", "--verbose", action="store_true", default=False,
                   help="show TensorFlow/absl logs and full tracebacks (default: quiet)")
    p.add_argument("--version", action="version", version=f"keras-priors {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name, parents=(), **kwargs):
        return sub.add_parser(name, parents=[verbose, *parents], **kwargs)

    # The .keras file a `train` run wrote: what evaluate and export read.
    trained_model = argparse.ArgumentParser(add_help=False)
    trained_model.add_argument("--model", required=True, help="a .keras file written by train (required)")

    d = command("demo", help="train a small model on synthetic kakapo data without and with priors",
                description="Train resnet_tiny on the built-in kakapo data (background shortcut in train, "
                            "not at test) without priors, with CAM suppression and with BackgroundSwap; print a "
                            "table, write TensorBoard logs, model.keras, a SavedModel and test PNGs to explain.")
    d.add_argument("--out", default="keras_priors_demo", help="output folder (default: %(default)s)")
    d.add_argument("--quick", action="store_true", help="a tiny run (seconds) to check the install (default: off)")
    d.add_argument("--epochs", type=_positive_int, default=None, help="epochs per model (default: 6, quick: 1)")
    d.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: %(default)s)")
    d.set_defaults(func=_cmd_demo)

    z = command("zoo", help="the model zoo").add_subparsers(dest="zoo_command", required=True, metavar="ACTION",
                                                            parser_class=_Parser)
    zl = z.add_parser("list", help="list zoo models", parents=[verbose])
    zl.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'resnet*' (default: %(default)s)")
    zl.set_defaults(func=_cmd_zoo_list)

    da = command("data", help="datasets").add_subparsers(dest="data_command", required=True, metavar="ACTION",
                                                         parser_class=_Parser)
    dp = da.add_parser("preview", help="write a PNG grid of a dataset with mask outlines and part boxes",
                       parents=[verbose])
    dp.add_argument("dataset", choices=["kakapo"], help="the dataset (choices: %(choices)s)")
    dp.add_argument("--out", default="kakapo_preview.png", help="output PNG file (default: %(default)s)")
    dp.add_argument("-n", type=_positive_int, default=16, help="number of images (default: %(default)s)")
    dp.add_argument("--split", default="train", choices=["train", "val", "test"],
                    help="which split (default: %(default)s)")
    dp.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    dp.set_defaults(func=_cmd_data_preview)

    t = command("train", help="train a zoo recipe with a checkpoint every epoch (a rerun resumes)",
                description="Train a recipe. After every epoch the model, optimizer state, random state and "
                            "epoch count are written to OUT/checkpoints/ckpt-<epoch>/ as one unit; rerunning the "
                            "same command resumes the run where it stopped, with the data order it would have had. "
                            "A corrupt newest checkpoint falls back to the one before.")
    t.add_argument("--recipe", required=True,
                   help="a recipe TOML file, e.g. zoo/kakapo_resnet_tiny_cam.toml (required)")
    t.add_argument("--out", default="runs/train",
                   help="output folder: checkpoints/, logs/, model.keras, results.json (default: %(default)s)")
    t.add_argument("--epochs", type=_positive_int, default=None,
                   help="override the recipe's epochs, an integer >= 1 (default: the recipe's train.epochs)")
    t.add_argument("--quick", action="store_true", help="use at most 128 training images (default: off)")
    t.add_argument("--deterministic", action="store_true", help="deterministic TensorFlow ops: a killed and "
                   "resumed run ends with an uninterrupted run's weights, bit for bit (default: off)")
    t.add_argument("--allow-recipe-change", action="store_true", help="resume a checkpoint another recipe wrote "
                   "in --out; its model, priors and optimizer go on with this recipe's data (default: refuse)")
    t.set_defaults(func=_cmd_train)

    e = command("evaluate", help="accuracy, worst-group accuracy, CAM-in-mask and ECE on kakapo test data",
                parents=[trained_model])
    e.add_argument("--samples", type=_positive_int, default=1000, help="test images (default: %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="seed of the test data (default: %(default)s)")
    e.set_defaults(func=_cmd_evaluate)

    x = command("export", help="export the classifier and CAM (no training-only heads): SavedModel, ONNX or LiteRT",
                parents=[trained_model])
    x.add_argument("--out", required=True,
                   help="SavedModel folder (new, empty, or an earlier export), or the .onnx / .tflite file (new, or "
                        "an earlier export); an earlier export of keras_priors is replaced (required)")
    x.add_argument("--format", choices=("tf_saved_model", "onnx", "litert"), default="tf_saved_model",
                   help="tf_saved_model (a folder), onnx (a .onnx file) or litert (a .tflite file); onnx and litert "
                        "need pip install \"keras-priors[export]\" (default: %(default)s)")
    x.add_argument("--overwrite", action="store_true",
                   help="replace an existing file or a folder that is not an earlier export; it is moved aside "
                        "to OUT.replaced-<time>, never deleted (default: refuse)")
    x.set_defaults(func=_cmd_export)

    ex = command("explain", help="write CAM-family overlays and a metrics table")
    ex.add_argument("--model", required=True, help="a .keras classifier (required)")
    ex.add_argument("--images", required=True, help="an image file or a folder of images (required)")
    ex.add_argument("--method", default="gradcam",
                    help=f"explainer, one of {', '.join(EXPLAIN_METHODS)} (default: %(default)s)")
    ex.add_argument("--layer", default=None, help="feature layer (default: the last 4-D output)")
    ex.add_argument("--out", default="explain_out", help="output folder for the overlays (default: %(default)s)")
    ex.add_argument("--masks", default=None,
                    help="object masks (a folder of mask images named as the images, white = object) to add the "
                         "pointing game, energy-based pointing game and relevance mass accuracy (default: none)")
    ex.add_argument("--no-road", action="store_true",
                    help="skip ROAD (18 sparse imputations per image: seconds per 224 px image; default: ROAD runs)")
    ex.set_defaults(func=_cmd_explain)

    r = command("rf", help="receptive field size, stride, padding and centre of every layer")
    r.add_argument("model", help="a zoo name (see `keras-priors zoo list`), a keras.applications name "
                                 "(e.g. ResNet50) or a .keras file")
    r.add_argument("--input-shape", type=_positive_int, nargs=3, default=None, metavar=("H", "W", "C"),
                   help="input shape (default: the model's own)")
    r.add_argument("--erf", action="store_true",
                   help="also the effective receptive field of the centre unit and RepLKNet's high-contribution "
                        "area ratio at t = 20/30/50/99 %% (default: off)")
    r.add_argument("--erf-layer", default=None, help="layer probed by --erf (default: the last spatial layer)")
    r.add_argument("--erf-samples", type=_positive_int, default=16,
                   help="random images averaged by --erf (default: %(default)s)")
    r.set_defaults(func=_cmd_rf)

    b = command("bench", help="run a benchmark from benchmarks/ (e.g. evidence: does each prior help?)",
                description="Run benchmarks/NAME.py with the remaining arguments, e.g. "
                            "`keras-priors bench evidence --size smoke`. `keras-priors bench NAME --help` "
                            "lists a benchmark's options.")
    b.add_argument("name", help="evidence, prior_overhead, train_throughput, explain_speed, rf_speed, maxl_step, ...")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark (default: none)")
    b.set_defaults(func=_cmd_bench)
    return p


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    User errors (a missing file, a bad value) print one line on stderr and
    return 1; usage errors return 2. With ``-v`` they raise with the traceback.
    """
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    _configure_logging(args.verbose)
    try:
        args.func(args)
    except (CLIError, ValueError, TypeError, OSError) as e:
        if args.verbose:
            raise
        name = " ".join(x for x in (args.command, getattr(args, "zoo_command", None),
                                    getattr(args, "data_command", None)) if x)
        print(f"keras-priors {name}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
