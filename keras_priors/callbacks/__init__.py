"""keras_priors.callbacks: TensorBoard views of what the network looks at, and the freeze-then-unfreeze schedule."""

from keras_priors.callbacks.cam_images import CAMImages, cam_overlay_grid, class_maps
from keras_priors.callbacks.freeze import FreezeBackbone, GradientGate, find_gates

__all__ = ["CAMImages", "cam_overlay_grid", "class_maps", "FreezeBackbone", "GradientGate", "find_gates"]
