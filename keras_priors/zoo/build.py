"""``build``: a zoo backbone plus priors, wired into a ``PriorModel``."""

from __future__ import annotations

import os

import keras

from keras_priors.layers import CAMHead
from keras_priors.priors.prior import BuildContext, Prior
from keras_priors.validation import check_fraction, check_positive_int
from keras_priors.zoo.preprocess import Preprocess
from keras_priors.zoo.prior_model import PriorModel
from keras_priors.zoo.registry import get_spec
from keras_priors.zoo.weights import load_backbone_weights


def build(
    name: str,
    num_classes: int,
    input_shape: tuple | None = None,
    priors=(),
    weights: str | None = None,
    dropout: float = 0.0,
    head_level: str | None = None,
) -> PriorModel:
    """Build a zoo classifier with priors, ready for ``compile(optimizer=...)`` and ``fit``.

    Args:
        name: a registry name (``keras_priors.zoo.list_models()``).
        num_classes: primary classes; ``1`` builds a single-logit binary head.
        input_shape: ``(H, W, 3)``; defaults to the entry's size.
        priors: ``keras_priors.priors`` objects.
        weights: ``None`` (random), ``"imagenet"`` for keras.applications
            entries (downloads; not used offline), or a path to a
            ``.weights.h5`` / ``.keras`` file of the same backbone. A prior
            may bring them instead (``Prior.backbone_weights``), e.g. with a
            freeze schedule.
        dropout: dropout on the last feature map before the classifier.
        head_level: the feature map the classifier (and so the CAM) reads,
            e.g. ``"P2"``; None takes the last level. An earlier level gives a
            finer CAM whose cells see less of the image (smaller receptive
            field), so a CAM prior constrains what is *seen*, not only where
            evidence is reported; the later levels are then unused.

    Returns:
        A ``PriorModel`` with outputs ``logits`` and ``cam`` plus what the priors add.

    Example:

    >>> import keras_priors as kp
    >>> model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(64, 64, 3),
    ...                      priors=[kp.priors.CAMSuppression(classes=[0])])
    >>> sorted(model.network.output)
    ['cam', 'logits']
    """
    spec = get_spec(name)
    num_classes = check_positive_int("num_classes", num_classes, owner="zoo.build")
    dropout = check_fraction("dropout", dropout, owner="zoo.build")
    input_shape = tuple(input_shape or spec.default_input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"zoo.build: Expected `input_shape` (H, W, 3). Received: input_shape={input_shape}")
    if min(input_shape[:2]) < spec.min_input_size:
        raise ValueError(
            f"zoo.build: {name!r} needs images of at least {spec.min_input_size}x{spec.min_input_size} "
            f"to keep a spatial feature map. Received: input_shape={input_shape}"
        )
    priors = list(priors)
    for p in priors:
        if not isinstance(p, Prior):
            raise TypeError(
                f"zoo.build: Expected `priors` to be keras_priors.priors objects. Received: {p!r} ({type(p).__name__})"
            )
    names = [p.name for p in priors]
    if len(set(names)) != len(names):
        raise ValueError(f"zoo.build: two priors share a name; give one `name=`. Received names: {names}")

    bringing = [p for p in priors if p.backbone_weights() is not None]
    if bringing and weights is not None or len(bringing) > 1:
        raise ValueError(
            "zoo.build: Expected one source of backbone weights: `weights=` or one prior that brings them. "
            f"Received: weights={weights!r} and the prior(s) {[p.name for p in bringing]}."
        )
    if bringing:
        weights = bringing[0].backbone_weights()

    # === Backbone ===
    image = keras.Input(shape=input_shape, name="image")
    preprocess = Preprocess(spec.preprocessing, name="preprocess")
    app_weights = weights if weights in spec.pretrained else None
    if weights is not None and app_weights is None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"zoo.build: Expected `weights` None, one of {spec.pretrained} or a file path. "
                         f"Received: {weights!r}")
    backbone = spec.builder(input_shape, weights=app_weights)
    if weights is not None and app_weights is None:
        (spec.weights_loader or load_backbone_weights)(backbone, os.fspath(weights))
    preprocessed = preprocess(image)
    features = backbone(preprocessed)
    ctx = BuildContext(
        inputs={"image": image}, features=dict(features), num_classes=num_classes, outputs={},
        training_only=set(), spec=spec, backbone=backbone, preprocessed=preprocessed, preprocess=preprocess,
    )

    # === Priors that change the features, then the head ===
    for p in priors:
        p.modify_features(ctx)
    if head_level is not None:
        if head_level not in ctx.features:
            raise ValueError(f"zoo.build: Expected `head_level` one of {list(ctx.features)} for {name!r}. "
                             f"Received: head_level={head_level!r}")
        own_head = [p.name for p in priors if type(p).build_head is not Prior.build_head]
        if own_head:
            raise ValueError(f"zoo.build: `head_level` sets the default classifier head, but the prior(s) {own_head} "
                             f"build their own. Received: head_level={head_level!r}")
    if not any(p.build_head(ctx) for p in priors):
        last = ctx.features[head_level or ctx.last_level]
        ctx.outputs.update(CAMHead(num_classes, dropout=dropout, name="classifier")(last))
    for p in priors:
        p.add_heads(ctx)

    network = keras.Model(ctx.inputs, ctx.outputs, name="network")
    return PriorModel(network, priors=priors, num_classes=num_classes,
                      training_only=sorted(ctx.training_only), name=name)
