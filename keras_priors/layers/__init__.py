"""keras_priors.layers: prior layers (CAM heads, part crops, fusion, decoders, auxiliary heads)."""

from keras_priors.layers.auxiliary_head import AuxiliaryHead, exclude_from_auxiliary
from keras_priors.layers.cam_head import CAMHead
from keras_priors.layers.class_activation_map import ClassActivationMap, cam_from_dense
from keras_priors.layers.dual_input_fusion import DualInputFusion
from keras_priors.layers.dual_stream import DualStream
from keras_priors.layers.mask_decoder_head import MaskDecoderHead
from keras_priors.layers.mask_to_box import MaskToBox
from keras_priors.layers.part_crop import PartCrop
from keras_priors.layers.spatial_attention import SpatialAttention

__all__ = [
    "AuxiliaryHead",
    "CAMHead",
    "ClassActivationMap",
    "DualInputFusion",
    "DualStream",
    "MaskDecoderHead",
    "MaskToBox",
    "PartCrop",
    "SpatialAttention",
    "cam_from_dense",
    "exclude_from_auxiliary",
]
