"""``keras-priors``: demo, train, evaluate, export, zoo, data, explain, rf and bench from the shell."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_demo(args):
    from keras_priors.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick, epochs=args.epochs, seed=args.seed)


def _cmd_zoo_list(args):
    from keras_priors.zoo import get_spec, list_models

    print(f"{'name':<18} {'input':<13} {'family':<20} description")
    for name in list_models(args.pattern):
        s = get_spec(name)
        print(f"{name:<18} {'x'.join(map(str, s.default_input_shape)):<13} {s.family:<20} {s.description}")


def _cmd_data_preview(args):
    from keras_priors.data import preview_kakapo

    path = preview_kakapo(args.out, n=args.n, seed=args.seed, split=args.split)
    print(f"Wrote {path}")


def _cmd_train(args):
    from keras_priors.training import train_recipe

    train_recipe(args.recipe, args.out, epochs=args.epochs, quick=args.quick)


def _load(path):
    import keras

    if not os.path.exists(path):
        raise SystemExit(f"error: --model: no such file: {path!r} (expected a .keras file written by train)")
    return keras.saving.load_model(path)


def _cmd_evaluate(args):
    from keras_priors import data
    from keras_priors.zoo.evaluation import evaluate_classifier

    model = _load(args.model)
    size = model.network.input["image"].shape[1]
    test = data.kakapo(split="test", image_size=size, num_samples=args.samples, batch_size=64, seed=args.seed)
    r = evaluate_classifier(model, test)
    for k in ("n", "accuracy", "worst_group_accuracy", "cam_in_mask", "ece"):
        print(f"{k:<22} {r[k]:.4f}" if k != "n" else f"{k:<22} {r[k]}")


def _cmd_export(args):
    model = _load(args.model)
    model.export(args.out, overwrite=args.overwrite)


def _read_images(path, size):
    import numpy as np
    import tensorflow as tf

    files = sorted(os.path.join(path, f) for f in os.listdir(path)) if os.path.isdir(path) else [path]
    files = [f for f in files if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif"))]
    if not files:
        raise SystemExit(f"error: --images: no .png/.jpg images found at {path!r}")
    images = []
    for f in files:
        try:
            img = tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as e:
            raise SystemExit(f"error: --images: cannot decode {f!r}: {e.message}") from None
        images.append(tf.image.resize(tf.cast(img, "float32") / 255.0, size).numpy())
    return files, np.stack(images)


def _classifier_of(model):
    """(logits model taking images, zoo model or None): explainers need one image input and one output."""
    import keras

    if hasattr(model, "inference_model"):
        inf = model.inference_model(include_cam=False)
        if len(inf.inputs) != 1:
            raise SystemExit("error: --model: explainers need a single-input classifier; this model also takes a part box")
        return keras.Model(inf.input["image"], inf.output["logits"]), model
    return model, None


def _zoo_cam(model, images):
    """CAM of the predicted class straight from a zoo model's ``cam`` output, in [0, 1] at image size."""
    import numpy as np

    from keras_priors.callbacks.cam_images import class_maps
    from keras_priors.explain._utils import normalize_maps

    # class_maps returns the predicted class's map whatever the labels; they only fill its true-class map.
    _, cam_pred, _ = class_maps(model, {"image": images, "label": np.zeros(len(images), "int64")})
    return normalize_maps(np.maximum(cam_pred, 0))


def _cmd_explain(args):
    import numpy as np
    import tensorflow as tf

    from keras_priors._atomic import write_atomic
    from keras_priors.explain import average_drop_increase_confidence, get_explainer, overlay

    model = _load(args.model)
    classifier, zoo_model = _classifier_of(model)
    size = tuple(classifier.inputs[0].shape[1:3])
    files, images = _read_images(args.images, size)
    if args.method.lower() == "cam" and zoo_model is not None:
        maps = _zoo_cam(zoo_model, images)
    else:
        maps = get_explainer(args.method)(classifier, layer=args.layer)(images)
    os.makedirs(args.out, exist_ok=True)
    for f, img, m in zip(files, images, maps):
        name = os.path.splitext(os.path.basename(f))[0]
        dest = os.path.join(args.out, f"{name}_{args.method}.png")
        write_atomic(dest, tf.io.encode_png(overlay(img, m)).numpy())
    scores = average_drop_increase_confidence(classifier, images, maps)
    print(f"Wrote {len(files)} overlay(s) to {os.path.abspath(args.out)}")
    print("| metric | value |\n|---|---|")
    for k, v in scores.items():
        if np.ndim(v) == 0:
            print(f"| {k} | {float(v):.2f} |")


def _cmd_rf(args):
    from keras_priors.receptive_field import rf_table_for

    print(rf_table_for(args.model, input_shape=tuple(args.input_shape) if args.input_shape else None))


def benchmarks_dir() -> str:
    """The repository's ``benchmarks/`` folder (benchmarks live beside the package, not inside it)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _cmd_bench(args):
    import runpy

    folder = benchmarks_dir()
    available = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")) \
        if os.path.isdir(folder) else []
    if not available:
        raise SystemExit(f"keras-priors bench: Expected the benchmarks/ folder of a source checkout at {folder}. "
                         "Received: no such folder (install with `pip install -e .` from a clone).")
    if args.name not in available:
        raise SystemExit(f"keras-priors bench: Expected a benchmark name among {available}. Received: {args.name!r}")
    sys.argv = [f"keras-priors bench {args.name}", *args.args]
    runpy.run_path(os.path.join(folder, args.name + ".py"), run_name="__main__")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keras-priors",
        description="Put what you know about images into Keras classifiers, and see what they look at.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="train a small model on synthetic kakapo data without and with priors",
                       description="Train resnet_tiny on the built-in kakapo data (background shortcut in train, "
                                   "not at test) without priors and with CAM suppression + mask decoder; print a "
                                   "table, write TensorBoard logs and a SavedModel.")
    d.add_argument("--out", default="keras_priors_demo", help="output folder (default: %(default)s)")
    d.add_argument("--quick", action="store_true", help="a tiny run (seconds) to check the install")
    d.add_argument("--epochs", type=int, default=None, help="epochs per model (default: 6, quick: 1)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    z = sub.add_parser("zoo", help="the model zoo").add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    zl = z.add_parser("list", help="list zoo models")
    zl.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'resnet*'")
    zl.set_defaults(func=_cmd_zoo_list)

    da = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    dp = da.add_parser("preview", help="write a PNG grid of a dataset with mask outlines and part boxes")
    dp.add_argument("dataset", choices=["kakapo"])
    dp.add_argument("--out", default="kakapo_preview.png")
    dp.add_argument("-n", type=int, default=16, help="number of images")
    dp.add_argument("--split", default="train", choices=["train", "val", "test"])
    dp.add_argument("--seed", type=int, default=0)
    dp.set_defaults(func=_cmd_data_preview)

    t = sub.add_parser("train", help="train a zoo recipe with a checkpoint every epoch (a rerun resumes)")
    t.add_argument("--recipe", required=True, help="a recipe file, e.g. zoo/kakapo_resnet_tiny_cam.toml")
    t.add_argument("--out", default="runs/train", help="output folder: checkpoints/, logs/, model.keras")
    t.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    t.add_argument("--quick", action="store_true", help="use at most 128 training images")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, worst-group accuracy, CAM-in-mask and ECE on kakapo test data")
    e.add_argument("--model", required=True, help="a .keras file written by train")
    e.add_argument("--samples", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_cmd_evaluate)

    x = sub.add_parser("export", help="export the classifier (no training-only heads) as a SavedModel")
    x.add_argument("--model", required=True, help="a .keras file written by train")
    x.add_argument("--out", required=True, help="SavedModel folder: new, empty, or an earlier export (replaced)")
    x.add_argument("--overwrite", action="store_true",
                   help="replace an existing file or a folder that is not an earlier export; it is moved aside "
                        "to OUT.replaced-<time>, never deleted (default: refuse)")
    x.set_defaults(func=_cmd_export)

    ex = sub.add_parser("explain", help="write CAM-family overlays and a metrics table")
    ex.add_argument("--model", required=True, help="a .keras classifier")
    ex.add_argument("--images", required=True, help="an image file or a folder of images")
    ex.add_argument("--method", default="gradcam", help="cam, gradcam, gradcam++, scorecam")
    ex.add_argument("--layer", default=None, help="feature layer (default: the last 4-D output)")
    ex.add_argument("--out", default="explain_out")
    ex.set_defaults(func=_cmd_explain)

    r = sub.add_parser("rf", help="receptive field size, stride, padding and centre of every layer")
    r.add_argument("model", help="a zoo name, a keras.applications name (e.g. ResNet50) or a .keras file")
    r.add_argument("--input-shape", type=int, nargs=3, default=None, metavar=("H", "W", "C"))
    r.set_defaults(func=_cmd_rf)

    b = sub.add_parser("bench", help="run a benchmark from benchmarks/ (e.g. evidence: does each prior help?)",
                       description="Run benchmarks/NAME.py with the remaining arguments, e.g. "
                                   "`keras-priors bench evidence --size smoke`. `keras-priors bench NAME --help` "
                                   "lists a benchmark's options.")
    b.add_argument("name", help="evidence, prior_overhead, train_throughput, explain_speed, rf_speed, maxl_step, ...")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
