"""keras_priors.callbacks: TensorBoard views of what the network looks at."""

from keras_priors.callbacks.cam_images import CAMImages, cam_overlay_grid, class_maps

__all__ = ["CAMImages", "cam_overlay_grid", "class_maps"]
