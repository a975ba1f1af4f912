"""Explainers by name, for the CLI (``keras-priors explain --method gradcam``)."""

from __future__ import annotations

from keras_priors.explain.cam import CAM
from keras_priors.explain.grad_cam import GradCAM
from keras_priors.explain.grad_cam_plus_plus import GradCAMPlusPlus
from keras_priors.explain.lcam import LCAM
from keras_priors.explain.score_cam import ScoreCAM

EXPLAINERS = {
    "cam": CAM,
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "lcam": LCAM,
}
_ALIASES = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++"}


def get_explainer(name: str):
    """The explainer class for ``name`` ("cam", "gradcam", "gradcam++", "scorecam", "lcam").

    Case, ``-`` and ``_`` are ignored ("Grad-CAM++" works).

    Example:
        >>> maps = get_explainer("gradcam")(model)(images)
    """
    if not isinstance(name, str):
        raise ValueError(f"Expected `name` to be one of {sorted(EXPLAINERS)}. Received: name={name!r}")
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in EXPLAINERS:
        raise ValueError(f"Expected `name` to be one of {sorted(EXPLAINERS)}. Received: name={name!r}")
    return EXPLAINERS[key]
