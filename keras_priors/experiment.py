"""One experiment: the same model without and with priors, same data, same budget, seeds, evaluation, records.

:func:`run` trains every configuration (a list of priors, ``[]`` for the
plain model) once per seed and evaluates it; it returns one record per
``(config, seed)``. :func:`compare` sets each configuration against a base
one (mean ± standard deviation over seeds, the change, and whether it is
beyond two binomial standard errors of the test set); :func:`format_table`
and :func:`format_comparison` print them. The demo, the evidence benchmark
(``benchmarks/evidence.py``) and the tutorials are callers of :func:`run`.

The budget is the same for every configuration: ``epochs`` passes over the
training data, or, with ``steps``, a fixed number of optimizer steps
whatever the size of the training set (:func:`fit_budget`: a configuration
trained on fewer images makes more passes, at least ``epochs``).

Example:
    >>> import numpy as np
    >>> from keras_priors import experiment, priors
    >>> rng = np.random.default_rng(0)
    >>> arrays = {"image": rng.random((16, 32, 32, 3), dtype="float32"),
    ...           "label": np.arange(16) % 2,
    ...           "object_mask": np.ones((16, 32, 32, 1), "float32")}
    >>> records = experiment.run({"plain": [], "cam": lambda: [priors.CAMSuppression(mask="object_mask")]},
    ...                          arrays, arrays, num_classes=2, input_shape=(32, 32, 3), steps=2,
    ...                          batch_size=8, verbose=0)
    >>> [(r["config"], r["seed"], r["train_images"], r["epochs"], r["steps"]) for r in records]
    [('plain', 0, 16, 1, 2), ('cam', 0, 16, 1, 2)]
    >>> sorted(records.models)
    [('cam', 0), ('plain', 0)]
    >>> [row["metric"] for row in experiment.compare(records, metrics=("accuracy", "ece"))]
    ['accuracy', 'ece']
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Callable

import numpy as np

from keras_priors.validation import check_one_of, check_positive_int

#: The fields every record has besides the evaluation's metrics.
RUN_KEYS = ("config", "seed", "train_images", "epochs", "steps", "train_seconds")

#: How tables and comparisons name the metrics of ``evaluate_classifier``.
METRIC_TITLES = {"accuracy": "accuracy", "worst_group_accuracy": "worst-group accuracy",
                 "cam_energy_in_mask": "CAM energy in object mask", "ece": "ECE", "train_seconds": "train time (s)",
                 "n": "test images"}

#: Metrics where a lower value is better (the others: higher is better).
LOWER_IS_BETTER = ("ece", "train_seconds")

SCHEDULES = ("constant", "cosine")


class Results(list):
    """The records of :func:`run`, in run order, and ``models``: ``{(config, seed): trained model}``.

    A ``list`` of plain dicts (``json.dumps`` writes it as is); ``models`` is
    empty when :func:`run` was called with ``keep_models=False``.
    """

    def __init__(self, records=(), models=None):
        super().__init__(records)
        self.models = dict(models or {})

    def model(self, config: str, seed: int | None = None):
        """The trained model of ``config`` (and ``seed``; default: the last seed it was trained with)."""
        if seed is None:
            seeds = [s for c, s in self.models if c == config]
            if not seeds:
                raise KeyError(f"Expected `config` among the kept models {sorted({c for c, _ in self.models})}. "
                               f"Received: config={config!r}")
            seed = seeds[-1]
        return self.models[(config, seed)]


# === Budget ===


def steps_for_epochs(epochs: int, train_images: int, batch_size: int) -> int:
    """Optimizer steps of ``epochs`` passes over ``train_images`` images in batches of ``batch_size``.

    Example:
        >>> steps_for_epochs(2, train_images=100, batch_size=32)
        8
    """
    epochs = check_positive_int("epochs", epochs, owner="steps_for_epochs")
    batch_size = check_positive_int("batch_size", batch_size, owner="steps_for_epochs")
    return max(1, epochs * math.ceil(train_images / batch_size))


def fit_budget(steps: int, steps_per_epoch: int, min_epochs: int = 1) -> tuple[int, int]:
    """``(epochs, steps_per_epoch)`` for ``fit`` so that a run makes about ``steps`` optimizer steps.

    The same-budget rule: ``steps`` is fixed for every configuration, whatever
    its training-set size (``steps_per_epoch`` batches make one pass over the
    data). A run makes at least ``min_epochs`` passes, then as many as the
    steps need; ``fit`` runs ``epochs * ceil(steps / epochs)`` steps in all
    (``steps`` rounded up to a whole number of steps per epoch).

    Example:
        >>> fit_budget(steps=8, steps_per_epoch=4, min_epochs=2)   # 4 batches of data: 2 passes
        (2, 4)
        >>> fit_budget(steps=8, steps_per_epoch=1, min_epochs=2)   # a tenth of the data: 8 passes of 1 step
        (8, 1)
    """
    steps = check_positive_int("steps", steps, owner="fit_budget")
    steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch, owner="fit_budget")
    min_epochs = check_positive_int("min_epochs", min_epochs, owner="fit_budget")
    epochs = max(min_epochs, math.ceil(steps / steps_per_epoch))
    return epochs, math.ceil(steps / epochs)


# === Running ===


def _is_dataset(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "cardinality")


def _check_data(name: str, value) -> None:
    if isinstance(value, dict) or _is_dataset(value):
        return
    raise TypeError(f"run: Expected `{name}` to be a dict of arrays or a tf.data.Dataset of dict batches. "
                    f"Received: {name} of type {type(value).__name__}")


def _batches_per_pass(dataset) -> int | None:
    """Batches in one pass of a finite ``tf.data`` dataset; None when unknown or infinite."""
    n = int(dataset.cardinality())
    return n if n > 0 else None


def _check_configs(configs) -> dict:
    if not isinstance(configs, dict) or not configs:
        raise ValueError(f"run: Expected `configs` to be a non-empty dict {{name: list of priors, or a function "
                         f"returning one}}. Received: configs={configs!r}")
    for name, value in configs.items():
        if not isinstance(name, str):
            raise ValueError(f"run: Expected `configs` keys to be names (str). Received: {name!r}")
        if not (callable(value) or isinstance(value, (list, tuple))):
            raise ValueError(f"run: Expected `configs[{name!r}]` to be a list of priors or a function returning "
                             f"one. Received: {type(value).__name__} {value!r}")
    return configs


def _check_seeds(seeds) -> list:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    try:
        seeds = list(seeds)
    except TypeError:
        seeds = None
    if not seeds or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds):
        raise ValueError(f"run: Expected `seeds` to be a non-empty sequence of integers >= 0. "
                         f"Received: seeds={seeds!r}")
    return [int(s) for s in seeds]


def run(configs: dict, train, test, *, num_classes: int, input_shape=None, model: str | Callable = "resnet_tiny",
        seeds=(0,), epochs: int = 1, steps: int | None = None, batch_size: int = 32,
        eval_batch_size: int | None = None, learning_rate: float = 2e-3, schedule: str = "constant",
        optimizer: Callable | None = None, build_kwargs: dict | None = None, evaluate: Callable | None = None,
        callbacks: Callable | None = None, validation_data=None, train_images: int | None = None,
        keep_models: bool = True, verbose="auto") -> Results:
    """Train every configuration once per seed on the same data and budget; evaluate each run.

    For each seed, then each configuration: ``keras.utils.set_random_seed(seed)``,
    the data pipelines (when ``train`` and ``test`` are arrays), the seed set
    again (so the pipelines draw nothing from the model's randomness), the model
    (``keras_priors.zoo.build(model, num_classes, input_shape, priors,
    **build_kwargs)``), the optimizer, ``fit`` and ``evaluate(model, test)``.

    Args:
        configs: ``{name: priors}``; ``priors`` is a list of
            ``keras_priors.priors`` objects (``[]``: the plain model) or a
            function returning one, called after the seed is set (fresh priors
            for each run).
        train: a dict of numpy arrays (batched and shuffled here with the run's
            seed, so every configuration sees the same batches) or a
            ``tf.data.Dataset`` of dict batches, used as given (its own
            shuffling decides each run's order).
        test: a dict of arrays or a dataset of dict batches, for ``evaluate``.
        num_classes: the number of classes.
        input_shape: the image shape, e.g. ``(64, 64, 3)``.
        model: a zoo model name, or a function ``priors -> PriorModel``.
        seeds: the seeds; each sets the initialisation, the data order (for
            arrays) and the priors' randomness.
        epochs: passes over the training data; with ``steps``, the fewest.
        steps: None, or the optimizer steps of every run whatever the size of
            its training set (see :func:`fit_budget`).
        batch_size: the training batch size for arrays.
        eval_batch_size: the batch size of ``test`` arrays (default ``batch_size``).
        learning_rate: Adam's learning rate (the initial one with ``"cosine"``).
        schedule: ``"constant"``, or ``"cosine"``: cosine decay to 0 over the run.
        optimizer: ``learning_rate_or_schedule -> keras optimizer``; default Adam.
        build_kwargs: more keyword arguments of ``zoo.build`` (``head_level``, ``dropout``).
        evaluate: ``(model, test_dataset) -> dict`` of metrics; default
            ``keras_priors.zoo.evaluate_classifier``.
        callbacks: ``(config, seed) -> list`` of Keras callbacks for that run.
        validation_data: passed to ``fit``.
        train_images: the training-set size to record when ``train`` is a
            dataset (a dataset is not iterated to count it; default None).
        keep_models: keep every trained model in ``Results.models``.
        verbose: ``fit``'s verbosity; unless 0, a line names each run and its priors.

    Returns:
        :class:`Results`: one record per ``(config, seed)``, ``{"config",
        "seed", "train_images", "epochs", "steps", "train_seconds",
        **metrics}``; ``steps`` is None when a dataset's length is unknown.

    Raises:
        ValueError, TypeError: a bad argument, before any training step.
    """
    # === Checks, before any training ===
    configs = _check_configs(configs)
    seeds = _check_seeds(seeds)
    _check_data("train", train)
    _check_data("test", test)
    num_classes = check_positive_int("num_classes", num_classes, owner="run")
    epochs = check_positive_int("epochs", epochs, owner="run")
    if steps is not None:
        steps = check_positive_int("steps", steps, owner="run")
    batch_size = check_positive_int("batch_size", batch_size, owner="run")
    eval_batch_size = batch_size if eval_batch_size is None else check_positive_int(
        "eval_batch_size", eval_batch_size, owner="run")
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise ValueError(f"run: Expected `learning_rate` to be a number > 0. "
                         f"Received: learning_rate={learning_rate!r}")
    check_one_of("schedule", schedule, SCHEDULES, owner="run")
    for name, fn in (("model", model), ("optimizer", optimizer), ("evaluate", evaluate), ("callbacks", callbacks)):
        if fn is not None and not callable(fn) and not (name == "model" and isinstance(fn, str)):
            raise ValueError(f"run: Expected `{name}` to be callable{' or a zoo model name' if name == 'model' else ''}"
                             f". Received: {name}={fn!r}")
    if build_kwargs is not None and not isinstance(build_kwargs, dict):
        raise ValueError(f"run: Expected `build_kwargs` to be a dict. Received: build_kwargs={build_kwargs!r}")
    if isinstance(train, dict):
        from keras_priors.data import check_arrays

        n_train = check_arrays(train)
        per_pass = math.ceil(n_train / batch_size)
    else:
        n_train = train_images
        per_pass = _batches_per_pass(train)
        if per_pass is None and (steps is not None or schedule == "cosine"):
            raise ValueError(f"run: Expected `train` to be a finite dataset of known length with "
                             f"{'steps' if steps is not None else 'schedule=' + repr(schedule)} (the number of "
                             f"batches per pass sets the budget). Received: a dataset of cardinality "
                             f"{int(train.cardinality())}; pass arrays, or a dataset built from them")
    if isinstance(test, dict):
        from keras_priors.data import check_arrays

        check_arrays(test)
    if steps is None:
        run_epochs, steps_per_epoch = epochs, None
        total = None if per_pass is None else per_pass * epochs
    else:
        run_epochs, steps_per_epoch = fit_budget(steps, per_pass, min_epochs=epochs)
        total = steps_per_epoch * run_epochs

    import keras

    from keras_priors import data, zoo

    evaluate = evaluate or zoo.evaluate_classifier
    results = Results()
    for seed in seeds:
        for name, priors in configs.items():
            # tf.data's shuffle order depends on the global seed when the pipeline is made: seed first.
            keras.utils.set_random_seed(seed)
            train_ds = data.make_pipeline(train, batch_size=batch_size, shuffle=True, seed=seed) if isinstance(
                train, dict) else train
            test_ds = data.make_pipeline(test, batch_size=eval_batch_size, shuffle=False) if isinstance(
                test, dict) else test
            keras.utils.set_random_seed(seed)
            prior_list = list(priors() if callable(priors) else priors)
            if verbose:
                print(f"\n== {name}" + (f", seed {seed}" if len(seeds) > 1 else "")
                      + f": priors = {[type(p).__name__ for p in prior_list] or 'none'}")
            net = build_model(model, num_classes=num_classes, input_shape=input_shape, priors=prior_list,
                              learning_rate=learning_rate, schedule=schedule, total_steps=total,
                              optimizer=optimizer, **(build_kwargs or {}))
            cbs = list(callbacks(name, seed)) if callbacks is not None else None
            start = time.perf_counter()
            # shuffle=False: the pipeline shuffles (Keras' own shuffle does not apply to a dataset).
            if steps is None:
                net.fit(train_ds, epochs=run_epochs, validation_data=validation_data, callbacks=cbs,
                        verbose=verbose, shuffle=False)
            else:
                net.fit(train_ds.repeat(), steps_per_epoch=steps_per_epoch, epochs=run_epochs,
                        validation_data=validation_data, callbacks=cbs, verbose=verbose, shuffle=False)
            seconds = time.perf_counter() - start
            metrics = evaluate(net, test_ds)
            results.append(make_record(name, seed, train_images=n_train, epochs=run_epochs, steps=total,
                                       train_seconds=seconds, metrics=metrics))
            if keep_models:
                results.models[(name, seed)] = net
    return results


def make_record(config: str, seed: int, *, train_images, epochs: int, steps, train_seconds: float,
                metrics: dict) -> dict:
    """One run's record: the :data:`RUN_KEYS`, then the metrics.

    The format :func:`run` returns, ``benchmarks/evidence.py`` writes and
    ``keras-priors train`` saves as ``results.json``.

    Example:
        >>> make_record("plain", 0, train_images=100, epochs=2, steps=8, train_seconds=1.5,
        ...             metrics={"accuracy": 0.5})  # doctest: +NORMALIZE_WHITESPACE
        {'config': 'plain', 'seed': 0, 'train_images': 100, 'epochs': 2, 'steps': 8, 'train_seconds': 1.5,
         'accuracy': 0.5}
    """
    return {"config": config, "seed": seed, "train_images": train_images, "epochs": epochs, "steps": steps,
            "train_seconds": train_seconds, **metrics}


def build_model(model: str | Callable = "resnet_tiny", *, num_classes: int, input_shape=None, priors=(),
                learning_rate: float = 2e-3, schedule: str = "constant", total_steps: int | None = None,
                optimizer: Callable | None = None, **build_kwargs):
    """The model of one run, compiled: ``zoo.build`` (or ``model(priors)``), then the optimizer.

    What :func:`run` does for each run after setting the seed, and what a
    recipe's first epoch starts from (``keras_priors.training``).

    Args:
        model: a zoo model name, or a function ``priors -> PriorModel``.
        num_classes, input_shape, priors, **build_kwargs: for ``zoo.build``.
        learning_rate: the (initial) learning rate.
        schedule: ``"constant"``, or ``"cosine"``: cosine decay to 0 over ``total_steps``.
        total_steps: the run's optimizer steps (needed by ``"cosine"``).
        optimizer: ``learning_rate_or_schedule -> keras optimizer``; default Adam.

    Example:
        >>> net = build_model("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), schedule="cosine",
        ...                   total_steps=10)
        >>> type(net.optimizer).__name__, net.optimizer.get_config()["learning_rate"]["class_name"]
        ('Adam', 'CosineDecay')
    """
    import keras

    from keras_priors import zoo

    check_one_of("schedule", schedule, SCHEDULES, owner="build_model")
    if schedule == "cosine":
        total_steps = check_positive_int("total_steps", total_steps, owner="build_model")
    net = model(list(priors)) if callable(model) else zoo.build(
        model, num_classes=num_classes, input_shape=input_shape, priors=list(priors), **build_kwargs)
    lr = learning_rate if schedule == "constant" else keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=total_steps)
    net.compile(optimizer=(optimizer or keras.optimizers.Adam)(lr))
    return net


# === Comparing ===


def _metrics_of(records) -> list:
    out = []
    for r in records:
        for k, v in r.items():
            if k not in RUN_KEYS and k not in out and isinstance(v, numbers.Real) and not isinstance(v, bool):
                out.append(k)
    return out


def summarize(records, metrics=None) -> dict:
    """``{config: {metric: {"mean", "std", "n"}}}`` over seeds (sample standard deviation; NaN runs left out).

    ``metrics``: the metrics to summarise (default: every numeric field of the
    records but the run's bookkeeping); a metric no run of a configuration has
    is left out of its cell.

    Example:
        >>> records = [{"config": "plain", "seed": 0, "accuracy": 0.5}, {"config": "plain", "seed": 1, "accuracy": 0.7}]
        >>> cell = summarize(records)["plain"]["accuracy"]
        >>> round(cell["mean"], 3), round(cell["std"], 3), cell["n"]
        (0.6, 0.141, 2)
    """
    groups: dict = {}
    for r in records:
        groups.setdefault(r["config"], []).append(r)
    metrics = list(metrics) if metrics is not None else _metrics_of(records)
    out: dict = {}
    for config, runs in groups.items():
        cell = {}
        for metric in metrics:
            values = np.array([r.get(metric, float("nan")) for r in runs], dtype=np.float64)
            values = values[~np.isnan(values)]
            if values.size:
                cell[metric] = {"mean": float(values.mean()),
                                "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                                "n": int(values.size)}
        out[config] = cell
    return out


def compare(records, base: str = "plain", metrics=("accuracy", "worst_group_accuracy", "cam_energy_in_mask"),
            binomial=("accuracy",), lower_is_better=LOWER_IS_BETTER) -> list[dict]:
    """Every configuration against ``base``: means over seeds, the change, and a two-standard-error verdict.

    For a metric in ``binomial`` (a proportion over the test examples), the
    change is set against two binomial standard errors of the base's mean,
    ``2 * sqrt(p * (1 - p) / n)`` with ``p`` the base's mean and ``n`` its
    test examples per run (the record's ``"n"``): the noise of drawing the
    test set, not of training (the standard deviation over seeds shows that).

    Args:
        records: records of :func:`run` (one or more seeds per configuration).
        base: the configuration the others are compared with.
        metrics: the metrics to compare; a metric missing or NaN for a
            configuration is skipped.
        binomial: the metrics that get the standard-error verdict.
        lower_is_better: the metrics where a decrease is an improvement.

    Returns:
        One row per (configuration, metric): ``{"config", "metric", "base",
        "base_mean", "base_std", "mean", "std", "seeds", "delta", "better",
        "two_se", "n", "beyond"}``; ``two_se``, ``n`` and ``beyond`` are None
        for metrics outside ``binomial``; ``better`` is None when unchanged.

    Example:
        >>> records = [{"config": "plain", "seed": 0, "accuracy": 0.5, "n": 100},
        ...            {"config": "prior", "seed": 0, "accuracy": 0.65, "n": 100}]
        >>> row = compare(records)[0]
        >>> round(row["delta"], 3), row["two_se"], row["beyond"]
        (0.15, 0.1, True)
    """
    records = list(records)
    configs = list(dict.fromkeys(r.get("config") for r in records))
    if base not in configs:
        raise ValueError(f"compare: Expected `base` among the records' configurations {configs}. "
                         f"Received: base={base!r}")
    metrics = list(metrics)
    summary = summarize(records, metrics + ["n"])
    rows = []
    for config in configs:
        if config == base:
            continue
        for metric in metrics:
            b, c = summary[base].get(metric), summary[config].get(metric)
            if b is None or c is None:
                continue
            delta = c["mean"] - b["mean"]
            better = None if delta == 0 else (delta < 0) == (metric in lower_is_better)
            row = {"config": config, "metric": metric, "base": base, "base_mean": b["mean"], "base_std": b["std"],
                   "mean": c["mean"], "std": c["std"], "seeds": c["n"], "delta": delta, "better": better,
                   "two_se": None, "n": None, "beyond": None}
            n = summary[base].get("n", {}).get("mean")
            if metric in binomial and n:
                p = b["mean"]
                row["two_se"] = 2 * float(np.sqrt(max(p * (1 - p), 1e-6) / n))
                row["n"] = int(n)
                row["beyond"] = bool(abs(delta) > row["two_se"])
            rows.append(row)
    return rows


def _mean_std(mean, std, seeds, digits=3):
    return f"{mean:.{digits}f}" if seeds < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_comparison(rows) -> str:
    """One line per row of :func:`compare`.

    Example:
        >>> rows = compare([{"config": "plain", "seed": 0, "accuracy": 0.5, "n": 100},
        ...                 {"config": "prior", "seed": 0, "accuracy": 0.65, "n": 100}])
        >>> print(format_comparison(rows))  # doctest: +NORMALIZE_WHITESPACE
        prior vs plain, accuracy: 0.500 -> 0.650 (+0.150); prior helped on this metric in this run
        (beyond 2 standard errors = 0.100, n=100)
    """
    lines = []
    for row in rows:
        verdict = {True: "helped", False: "did NOT help", None: "made no difference"}[row["better"]]
        title = METRIC_TITLES.get(row["metric"], row["metric"])
        line = (f"{row['config']} vs {row['base']}, {title}: "
                f"{_mean_std(row['base_mean'], row['base_std'], row['seeds'])} -> "
                f"{_mean_std(row['mean'], row['std'], row['seeds'])} ({row['delta']:+.3f}); "
                f"{row['config']} {verdict} on this metric "
                + ("in this run" if row["seeds"] < 2 else f"over {row['seeds']} seeds (mean)"))
        if row["two_se"] is not None:
            line += (f" ({'beyond' if row['beyond'] else 'within'} 2 standard errors = {row['two_se']:.3f}, "
                     f"n={row['n']})")
        lines.append(line)
    return "\n".join(lines)


def format_table(records, metrics=("accuracy", "worst_group_accuracy", "cam_energy_in_mask"),
                 name: str = "model") -> str:
    """A Markdown table: one row per configuration, mean (± standard deviation over seeds) per metric.

    Example:
        >>> print(format_table([{"config": "plain", "seed": 0, "accuracy": 0.5}], metrics=("accuracy",)))
        | model | accuracy |
        |---|---|
        | plain | 0.500 |
    """
    summary = summarize(records, metrics)
    lines = ["| " + " | ".join([name] + [METRIC_TITLES.get(m, m) for m in metrics]) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for config, cell in summary.items():
        values = [_mean_std(cell[m]["mean"], cell[m]["std"], cell[m]["n"], 0 if m == "train_seconds" else 3)
                  if m in cell else "n/a" for m in metrics]
        lines.append("| " + " | ".join([config] + values) + " |")
    return "\n".join(lines)
