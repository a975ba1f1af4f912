"""Explainers by name, for the CLI (``keras-priors explain --method gradcam``)."""

from __future__ import annotations

from keras_priors.explain.ablation_cam import AblationCAM
from keras_priors.explain.base_cam import explainer_docstring
from keras_priors.explain.cam import CAM
from keras_priors.explain.eigen_cam import EigenCAM
from keras_priors.explain.grad_cam import GradCAM
from keras_priors.explain.grad_cam_plus_plus import GradCAMPlusPlus
from keras_priors.explain.hires_cam import HiResCAM
from keras_priors.explain.layer_cam import LayerCAM
from keras_priors.explain.lcam import LCAM
from keras_priors.explain.score_cam import ScoreCAM
from keras_priors.explain.xgrad_cam import XGradCAM

EXPLAINERS = {
    "cam": CAM,
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "lcam": LCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "xgradcam": XGradCAM,
    "eigencam": EigenCAM,
    "ablationcam": AblationCAM,
}
_ALIASES = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++"}


@explainer_docstring
def get_explainer(name: str):
    """The explainer class for ``name`` ("cam", "gradcam", "gradcam++", "scorecam", "lcam",
    "layercam", "hirescam", "xgradcam", "eigencam", "ablationcam").

    Case, ``-`` and ``_`` are ignored ("Grad-CAM++" works).

    Example:
        {example_model}
        >>> get_explainer("Grad-CAM++").__name__
        'GradCAMPlusPlus'
        >>> maps = get_explainer("gradcam")(model)(images)
        >>> maps.shape
        (2, 16, 16)
    """
    if not isinstance(name, str):
        raise ValueError(f"Expected `name` to be one of {sorted(EXPLAINERS)}. Received: name={name!r}")
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in EXPLAINERS:
        raise ValueError(f"Expected `name` to be one of {sorted(EXPLAINERS)}. Received: name={name!r}")
    return EXPLAINERS[key]
