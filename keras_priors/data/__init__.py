"""keras_priors.data: datasets following one dict contract, and tf.data pipelines.

Keys (whichever a dataset has): ``image`` float32 (H, W, 3) in [0, 1],
``label`` int32, ``object_mask`` / ``part_mask`` float32 (H, W, 1) in {0, 1},
``part_box`` float32 ``[y1, x1, y2, x2]`` in [0, 1] (``crop_and_resize``
convention), ``aux_label``, ``group``, ``background`` int32.
"""

from keras_priors.data.cub200 import HEAD_PARTS, cub200, read_cub_annotations
from keras_priors.data.fashion_mnist import (
    decoy_fashion_mnist,
    fashion_on_textures,
    load_fashion_mnist,
    load_textures,
    read_idx,
)
from keras_priors.data.folders import image_folder
from keras_priors.data.kakapo import BACKGROUNDS, kakapo, make_kakapo, preview_kakapo
from keras_priors.data.pipeline import augment_batch, augment_example, check_arrays, make_pipeline
from keras_priors.data.preview import mask_outline, preview, render_grid

__all__ = [
    "BACKGROUNDS",
    "HEAD_PARTS",
    "augment_batch",
    "augment_example",
    "check_arrays",
    "cub200",
    "decoy_fashion_mnist",
    "fashion_on_textures",
    "image_folder",
    "kakapo",
    "load_fashion_mnist",
    "load_textures",
    "make_kakapo",
    "make_pipeline",
    "mask_outline",
    "preview",
    "preview_kakapo",
    "read_cub_annotations",
    "read_idx",
    "render_grid",
]
