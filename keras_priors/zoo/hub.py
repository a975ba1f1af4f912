"""keras-hub backbones in the zoo, registered when ``keras_hub`` is installed.

``keras_hub`` is found on the path, not imported, when the entries are
registered: listing the zoo stays fast; the import happens when a ``hub_*``
model is built.

Each entry builds a keras-hub backbone from its architecture arguments (no
download), then exposes the backbone's ``pyramid_outputs`` renamed by stride
(``P<k>`` has stride ``2**k``, the zoo convention; keras-hub's MiT calls its
stride-4 map ``P1``, the zoo calls it ``P2``). Weights come from a local
preset directory (``backbone.save_to_preset(dir)``, read offline with
``from_preset(dir)``), a ``.weights.h5``/``.keras`` file, or a keras-hub
preset name (downloads: online only).
"""

from __future__ import annotations

import math
import os

import keras

from keras_priors.zoo.weights import copy_weights_in_order, load_backbone_weights

#: Architecture arguments of each entry, as the keras-hub presets of the same name have them.
LAYOUTS = {
    "resnet_18": ("ResNetBackbone", dict(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block")),
    "resnet_50": ("ResNetBackbone", dict(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block")),
    "densenet_121": ("DenseNetBackbone", dict(stackwise_num_repeats=[6, 12, 24, 16])),
    "mit_b0": ("MiTBackbone", dict(
        layerwise_depths=[2, 2, 2, 2], num_layers=4, layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2], hidden_dims=[32, 64, 160, 256])),
}

# name, layout, keras-hub presets (online), smallest input, feature maps, description
_ENTRIES = [
    ("hub_resnet_18", "resnet_18", ("resnet_18_imagenet",), 32, ("P2", "P3", "P4", "P5"),
     "ResNet-18 (basic blocks), about 11.2M params"),
    ("hub_resnet_50", "resnet_50", ("resnet_50_imagenet",), 32, ("P2", "P3", "P4", "P5"),
     "ResNet-50 (bottleneck blocks), about 23.6M params"),
    ("hub_densenet_121", "densenet_121", ("densenet_121_imagenet",), 32, ("P2", "P3", "P4", "P5"),
     "DenseNet-121, about 7.0M params"),
    # MiT's spatial-reduction attention fails to build below 64 px (keras-hub 0.32).
    ("hub_mit_b0", "mit_b0", ("mit_b0_ade20k_512",), 64, ("P2", "P3", "P4", "P5"),
     "Mix Transformer B0 (SegFormer encoder), about 3.3M params; fixed input size"),
]

def hub_available() -> bool:
    """Whether ``keras_hub`` is installed (found on the path; not imported: it takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("keras_hub") is not None


def _import_keras_hub():
    """``keras_hub``, or a clear error when it is installed but does not import."""
    try:
        import keras_hub
    except Exception as e:  # e.g. a keras_hub built for another Keras
        raise ImportError(
            "Expected keras_hub to import for the zoo's hub_* models. Received: "
            f"{type(e).__name__}: {e}. Install a keras-hub release that matches your Keras "
            "(pip install 'keras-priors[hub]')."
        ) from e
    return keras_hub


def _hub_backbone(layout: str, input_shape, preset: str | None = None):
    keras_hub = _import_keras_hub()

    class_name, kwargs = LAYOUTS[layout]
    cls = getattr(keras_hub.models, class_name)
    if preset is not None:
        return cls.from_preset(preset, image_shape=tuple(input_shape))
    return cls(**kwargs, image_shape=tuple(input_shape))


def pyramid_from_hub(hub_backbone, input_shape, name: str = "backbone") -> keras.Model:
    """A zoo backbone from a keras-hub backbone: its ``pyramid_outputs`` renamed ``P<log2 stride>``."""
    pyramid = getattr(hub_backbone, "pyramid_outputs", None)
    if not pyramid:
        raise ValueError(
            "Expected a keras-hub backbone with `pyramid_outputs`. "
            f"Received: {type(hub_backbone).__name__} without them."
        )
    outputs = {}
    for key, tensor in pyramid.items():
        level = int(round(math.log2(input_shape[0] / tensor.shape[1])))
        outputs[f"P{level}"] = tensor
    outputs = {k: outputs[k] for k in sorted(outputs, key=lambda k: int(k[1:]))}
    inputs = hub_backbone.inputs
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=name)


def _builder(layout: str, presets: tuple):
    def builder(input_shape, weights=None, name="backbone"):
        preset = weights if weights in presets else None
        return pyramid_from_hub(_hub_backbone(layout, input_shape, preset=preset), input_shape, name=name)

    return builder


def load_preset_weights(backbone: keras.Model, path: str) -> None:
    """Fill a zoo hub backbone from a keras-hub preset directory, or a weights/model file.

    A directory is read with ``keras_hub.models.Backbone.from_preset(path)``
    (offline); its layers are matched to ``backbone``'s by name and must have
    the same weight shapes. Other paths go to
    ``keras_priors.zoo.load_backbone_weights``; a name that is neither a
    directory nor a file is tried as a keras-hub preset name (online).
    """
    if os.path.isfile(path):
        return load_backbone_weights(backbone, path)
    keras_hub = _import_keras_hub()

    if not os.path.isdir(path) and (os.sep in path or path.startswith(".")):
        raise FileNotFoundError("Preset directory not found. Expected a keras-hub preset directory. "
                                f"Received: {path!r}")
    try:
        input_shape = tuple(backbone.input.shape[1:])
        source = keras_hub.models.Backbone.from_preset(path, image_shape=input_shape)
        copy_weights_in_order(pyramid_from_hub(source, input_shape), backbone)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(
            f"The keras-hub preset {path!r} does not fit the backbone {backbone.name!r} "
            f"({backbone.count_params()} parameters). Expected a preset of the same architecture. Cause: {e}"
        ) from e


def entries() -> list[dict]:
    """The ``hub_*`` entries as ``ModelSpec`` keyword arguments (``zoo.registry`` registers them)."""
    return [
        dict(name=name, builder=_builder(layout, presets), default_input_shape=(224, 224, 3),
             min_input_size=min_size, preprocessing="torch", family="keras-hub",
             description=f"{desc}; keras_hub.models.{LAYOUTS[layout][0]}, ImageNet mean/std input",
             pretrained=presets, weights_loader=load_preset_weights, feature_maps=maps)
        for name, layout, presets, min_size, maps, desc in _ENTRIES
    ]
