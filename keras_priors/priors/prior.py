"""The base class every prior derives from, and the context a zoo build passes it."""

from __future__ import annotations

import dataclasses

import keras

from keras_priors.validation import check_non_negative


@dataclasses.dataclass
class BuildContext:
    """What a prior sees while ``keras_priors.zoo.build`` wires a model.

    Attributes:
        inputs: the model's input tensors by data key (``"image"`` always).
        features: the backbone's feature maps, ``{"P1": ..., "P3": ...}``,
            fine to coarse; a prior may replace the last one (``SpatialAttention``).
        num_classes: the number of primary classes (1 = a single-logit binary head).
        outputs: the model's outputs by name (``"logits"`` and ``"cam"`` once the
            head is built); priors add theirs.
        training_only: output names that export drops.
        spec: the zoo ``ModelSpec``.
        backbone: the backbone model.
        preprocessed: the preprocessed image tensor fed to the backbone.
        preprocess: the preprocessing layer (a stream for a second input reuses it).
    """

    inputs: dict
    features: dict
    num_classes: int
    outputs: dict
    training_only: set
    spec: object
    backbone: keras.Model
    preprocessed: object
    preprocess: keras.layers.Layer

    @property
    def last_level(self) -> str:
        return list(self.features)[-1]


@dataclasses.dataclass(frozen=True)
class DataKey:
    """What a prior needs in one data key: its per-sample shape and the kind of values.

    The zoo checks every key a prior declares (``Prior.data_spec``) before the
    first training step: the key is present, its shape fits, and the first
    batch's values are valid for the kind.

    Attributes:
        shape: the per-sample shape (batch dimension excluded); ``"H"`` and
            ``"W"`` stand for the images' height and width, ``None`` for any
            size. ``None`` instead of a tuple: any shape.
        kind: ``"mask"`` (finite floats in [0, 1]), ``"box"`` (``[y1, x1, y2,
            x2]`` in [0, 1], ``y1 <= y2``, ``x1 <= x2``) or ``"any"`` (values
            unchecked).
        description: what the key holds, for error messages.
    """

    shape: tuple | None = None
    kind: str = "any"
    description: str = ""

    def shape_text(self) -> str:
        return "(batch,) + " + str(tuple(self.shape)) if self.shape is not None else "any shape"


#: A mask at image resolution with one channel, values in [0, 1].
MASK = DataKey(("H", "W", 1), "mask", "a mask at image resolution, (H, W, 1) in [0, 1]")
#: A box ``[y1, x1, y2, x2]`` relative to the image.
BOX = DataKey((4,), "box", "a box [y1, x1, y2, x2] in [0, 1]")


@dataclasses.dataclass
class FitPhase:
    """One stretch of training a prior's fit schedule asks for.

    ``PriorModel.fit`` splits the requested epochs at each phase's
    ``start_epoch`` and, before training from it, calls ``begin(model)``
    (which may change what is trainable and recompile). Phases are run as
    separate ``fit`` calls whose histories are merged.

    Attributes:
        start_epoch: the epoch (0-based) the phase begins at.
        begin: ``begin(model)``, run before the phase's first epoch.
    """

    start_epoch: int
    begin: object


@dataclasses.dataclass(frozen=True)
class GradientRequest:
    """A gradient a prior needs in the train step (double backprop).

    The model computes it in the same forward pass that gives the outputs
    (``keras_priors._autodiff``) and adds it to the outputs dict under
    ``key``, so ``loss_terms`` just reads it; the outer training gradient then
    differentiates through it.

    Attributes:
        key: the output name the gradient is stored under.
        score: ``score(outputs, batch) -> scalar`` (float32), summed over the
            batch; its gradient is taken.
        wrt: what to differentiate with respect to: a network input key
            (``"image"``), a backbone feature level (``"P3"``), or None for
            the classifier head's input (the CAM's feature map).
        features_key: for a feature map, the output name the map itself is
            stored under (None: not stored).
        keys: batch keys that must be present; without them (prediction on
            images only) nothing is computed.
    """

    key: str
    score: object
    wrt: str | None = "image"
    features_key: str | None = None
    keys: tuple = ()


class Prior:
    """One way to put prior knowledge into a classifier.

    The contract ``keras_priors.zoo`` builds, trains, exports and saves a
    prior by; the zoo never names a particular prior. A prior

    - declares the data keys it needs (``required_keys``) and their shapes
      (``data_spec``), checked before the first training step;
    - may change the network (``modify_features`` before the classifier head,
      ``build_head`` instead of it, ``add_heads`` after it) and names the
      outputs it adds that are training-only (``ctx.training_only``): export
      drops exactly those;
    - may change a training batch (``transform_batch``) or ask for gradients
      computed in the train step (``gradient_requests``);
    - contributes loss terms: ``unweighted_loss_terms`` returns them and the
      base class multiplies each by ``weight`` once (``loss_terms``); each is
      logged as its own scalar;
    - may bring callbacks (``callbacks``), backbone weights
      (``backbone_weights``) and a fit schedule (``fit_schedule``);
    - saves and reloads through ``get_config``/``from_config`` and Keras
      serialization: register a subclass with
      ``@keras.saving.register_keras_serializable(package=...)`` and a
      ``.keras`` file holding it reloads with ``safe_mode=True``.

    All hooks are optional.

    Example:

    >>> import keras
    >>> import keras_priors as kp
    >>> from keras import ops
    >>> @keras.saving.register_keras_serializable(package="my_priors")
    ... class DarkBackground(kp.priors.Prior):  # mean brightness outside the object
    ...     required_keys = ("object_mask",)
    ...     def data_spec(self):
    ...         return {"object_mask": kp.priors.MASK}
    ...     def unweighted_loss_terms(self, targets, outputs, num_classes):
    ...         outside = 1.0 - ops.cast(targets["object_mask"], "float32")
    ...         return {self.name: ops.mean(ops.cast(targets["image"], "float32") * outside)}
    >>> prior = DarkBackground(weight=2.0)
    >>> batch = {"image": ops.ones((1, 4, 4, 3)), "object_mask": ops.zeros((1, 4, 4, 1))}
    >>> float(prior.loss_terms(batch, {}, 2)["dark_background"])  # weight * 1.0
    2.0

    Args:
        weight: the weight of this prior's loss term(s), the one name every
            prior uses for how much its term counts; ``None`` for a prior
            with no loss term (``BackgroundSwap``, ``Pretrained``,
            ``LabelSmoothing``, an oracle-box ``DualInput``).
        name: the loss term name in logs; defaults to the snake-case class name.
    """

    required_keys: tuple = ()
    #: True for priors that replace the primary classification loss.
    replaces_classification_loss: bool = False

    def __init__(self, weight: float | None = 1.0, name: str | None = None):
        self.weight = None if weight is None else check_non_negative("weight", weight, owner=type(self).__name__)
        self.name = name or _snake(type(self).__name__)

    # === Hooks ===
    def modify_features(self, ctx: BuildContext) -> None:
        """Change ``ctx.features`` before the classifier head is built."""

    def build_head(self, ctx: BuildContext) -> bool:
        """Build the classifier head instead of the default ``CAMHead``; True if done."""
        return False

    def add_heads(self, ctx: BuildContext) -> None:
        """Add outputs to ``ctx.outputs`` (and names to ``ctx.training_only``)."""

    def transform_batch(self, batch: dict, seed_generator) -> dict:
        """Change a training batch inside the train step, before the forward pass.

        Data-level priors (counterexamples such as a background swap) override
        this. It runs only in training (``model(batch, training=True)``, which
        is what ``fit`` calls), on every backend, so it must use ``keras.ops``
        and draw randomness from ``seed_generator`` (a
        ``keras.random.SeedGenerator`` owned by the model, whose state advances
        each step). The returned dict feeds the network; the loss terms still
        see the batch as the dataset gave it, so a transform must keep the
        labels and masks valid for the new images.
        """
        return batch

    @property
    def transforms_batch(self) -> bool:
        """True if this prior overrides ``transform_batch``."""
        return type(self).transform_batch is not Prior.transform_batch

    def data_spec(self) -> dict:
        """``{data key: DataKey}`` for each of ``required_keys``: shapes and kinds the zoo checks.

        The default declares each required key with any shape; priors that
        know their keys' shapes override it (``{"object_mask": MASK}``).
        """
        return {key: DataKey() for key in self.required_keys}

    def gradient_requests(self) -> list:
        """``GradientRequest`` objects: gradients the model adds to the outputs for ``loss_terms``.

        Explanation priors (input-gradient and Grad-CAM penalties) override
        this; the model computes each gradient whenever the batch has the
        request's ``keys``, in training and in evaluation.
        """
        return []

    def unweighted_loss_terms(self, targets: dict, outputs: dict, num_classes: int) -> dict:
        """The prior's loss terms ``{name: scalar}`` in float32, before ``weight``.

        Override this; ``loss_terms`` applies the weight. ``targets`` is the
        batch as the dataset gave it, ``outputs`` the model's outputs (plus the
        gradients of ``gradient_requests``).
        """
        return {}

    def loss_terms(self, targets: dict, outputs: dict, num_classes: int) -> dict:
        """Weighted loss terms ``{name: weight * term}``: what ``PriorModel`` adds to the loss."""
        terms = self.unweighted_loss_terms(targets, outputs, num_classes)
        if terms and self.weight is None:
            raise ValueError(f"{type(self).__name__}: weight=None declares a prior with no loss term, but "
                             f"`unweighted_loss_terms` returned {sorted(terms)}. Expected a number `weight` >= 0.")
        return {name: self.weight * value for name, value in terms.items()}

    def term_names(self) -> list:
        """Names of the loss terms ``loss_terms`` returns (logged as ``<name>_loss``)."""
        overridden = (type(self).loss_terms is not Prior.loss_terms
                      or type(self).unweighted_loss_terms is not Prior.unweighted_loss_terms)
        return [self.name] if self.weight is not None and overridden else []

    def metric_names(self) -> list:
        """Names of per-sample metrics ``metric_values`` returns (logged as batch means)."""
        return []

    def metric_values(self, targets: dict, outputs: dict, num_classes: int) -> dict:
        """Per-sample metric values ``{name: (B,) tensor}``."""
        return {}

    def classification_loss(self, targets: dict, outputs: dict, num_classes: int):
        """The primary loss, for priors with ``replaces_classification_loss``."""
        raise NotImplementedError

    def callbacks(self) -> list:
        """Keras callbacks ``fit`` should run with this prior (e.g. unfreezing)."""
        return []

    def backbone_weights(self):
        """Weights the zoo loads into the backbone at build time (a path or ``"imagenet"``), or None."""
        return None

    def fit_schedule(self, model, initial_epoch: int) -> list:
        """``FitPhase`` objects: how ``fit`` splits its epochs (e.g. freeze, then unfreeze).

        Called at the start of each ``fit`` with the model and its
        ``initial_epoch``. An empty list (the default) is one plain ``fit``.
        """
        return []

    def check_data(self, keys, spec=None) -> None:
        """Raise before training if the data lacks a key this prior needs."""
        needed = list(dict.fromkeys([*self.required_keys, *self.data_spec()]))
        missing = [k for k in needed if k not in keys]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs the data key(s) {missing}. "
                f"Expected a dataset whose elements have keys {sorted(set(needed) | {'image', 'label'})}. "
                f"Received keys: {sorted(keys)}"
            )

    # === Config ===
    def get_config(self) -> dict:
        return {"weight": self.weight, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _snake(name: str) -> str:
    """``"CAMSuppression"`` -> ``"cam_suppression"``, ``"DualInput"`` -> ``"dual_input"``."""
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i:
            prev_lower = name[i - 1].islower()
            next_lower = i + 1 < len(name) and name[i + 1].islower()
            if prev_lower or (next_lower and name[i - 1].isupper()):
                out.append("_")
        out.append(c.lower())
    return "".join(out)
