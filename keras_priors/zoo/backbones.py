"""Backbones: functional models that expose their feature maps by name.

Every backbone maps a preprocessed image to a dict of feature maps named by
their stride, ``{"P1": ..., "P3": ...}`` where ``P<k>`` has stride ``2**k``
(the keras-hub ``pyramid_outputs`` convention). Priors read these names,
never a layer name of a particular architecture.
"""

from __future__ import annotations

import keras
from keras import layers


def _conv_bn_relu(x, filters, kernel_size, strides, name):
    if strides > 1:
        # Symmetric explicit padding: 'same' with stride 2 on an even map pads only on the
        # right, which would put this branch's unit centres one pixel off the 1x1 shortcut's.
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", use_bias=False,
                          name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters, strides, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, strides, f"{name}_1")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_2_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def residual_net(input_shape, widths=(16, 32, 64), blocks=(1, 1, 1), stem_width=16, name="resnet_tiny"):
    """A small ResNet for 32 to 96 px images.

    A 3x3 stem at stride 1, then one stage per width, each starting at stride 2,
    so the last map has stride ``2 ** len(widths)`` (8 for three stages: an 8x8
    CAM on a 64x64 image).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, stem_width, 3, 1, "stem")
    pyramid = {}
    for stage, (width, n) in enumerate(zip(widths, blocks), start=1):
        for b in range(n):
            x = _residual_block(x, width, 2 if b == 0 else 1, f"stage{stage}_block{b + 1}")
        pyramid[f"P{stage}"] = x
    return keras.Model(inputs, pyramid, name=name)


def pyramid_from_model(model: keras.Model, input_shape, name: str) -> keras.Model:
    """Wrap a classification-free keras.applications model as a pyramid backbone.

    For each stride 2**k found among the model's 4-D layer outputs, the last
    layer at that stride becomes ``P<k>``. This finds the same maps keras-hub
    exposes (e.g. ResNet50: conv2_block3_out .. conv5_block3_out) without
    hard-coding layer names that differ between Keras versions.
    """
    size = input_shape[0]
    by_level = {}
    for layer in model.layers:
        out = layer.output
        if not hasattr(out, "shape") or len(out.shape) != 4 or out.shape[1] is None:
            continue
        stride = size / out.shape[1]
        level = round(stride).bit_length() - 1
        # Levels stop at stride 32 (P5), the coarsest map of every classic backbone;
        # this also keeps out the 1x1 maps of squeeze-and-excitation blocks.
        if 1 <= level <= 5 and 2**level == stride:
            by_level[level] = out  # later layers overwrite: last at that stride
    outputs = {f"P{k}": by_level[k] for k in sorted(by_level) if k >= 2}
    return keras.Model(model.input, outputs, name=name)
