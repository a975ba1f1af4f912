"""``logits_classifier``: the plain image-to-logits classifier inside a zoo model."""

from __future__ import annotations


def logits_classifier(model, name: str = "classifier"):
    """The plain ``image -> logits`` ``keras.Model`` of a zoo ``PriorModel``, for explainers and metrics.

    A ``PriorModel`` takes and returns dicts; explainers
    (``kp.explain.GradCAM`` ...) and their metrics need one image input and
    one output. This is its inference model (training-only heads dropped)
    cut at the ``logits`` output; the layers and weights are shared, not
    copied. Any other model (already a plain classifier) is returned as it is.

    Args:
        model: a zoo ``PriorModel``, or a plain classifier.
        name: the name of the returned model.

    Returns:
        A ``keras.Model`` mapping images ``(B, H, W, 3)`` to logits ``(B, K)``.

    Raises:
        ValueError: when the model needs more than the image at inference (a
            ``DualInput`` prior given the true part box).

    Example:

    >>> import numpy as np
    >>> import keras_priors as kp
    >>> model = kp.zoo.build("resnet_tiny", num_classes=3, input_shape=(32, 32, 3))
    >>> classifier = kp.zoo.logits_classifier(model)
    >>> tuple(classifier(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 3)
    >>> kp.zoo.logits_classifier(classifier) is classifier
    True
    """
    import keras

    if not hasattr(model, "inference_model"):
        return model
    inference = model.inference_model(include_cam=False)
    if len(inference.inputs) != 1:
        raise ValueError(
            f"logits_classifier: Expected a `model` whose inference takes only the image. Received: a model whose "
            f"inference also takes {sorted(k for k in inference.input if k != 'image')} (e.g. a true part box)"
        )
    return keras.Model(inference.input["image"], inference.output["logits"], name=name)
