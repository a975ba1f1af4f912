"""Tiny models shared by the explain tests, plus numpy replicas of them."""

import keras
import numpy as np
from keras import layers

from keras_priors.explain import resize_cam
from keras_priors.explain._utils import normalize_maps


def flat_model(num_classes=3, size=8, name="flat", softmax=False):
    """Input -> Conv2D 1x1 (relu, 'feat') -> AvgPool 2 ('pool') -> GAP -> Dense ('logits')."""
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(4, 1, activation="relu", name="feat")(inp)
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(num_classes, activation="softmax" if softmax else None, name="logits")(x)
    return keras.Model(inp, out, name=name)


def nested_model(num_classes=3, size=8):
    """Same function, but the conv trunk is a nested keras.Model named 'backbone'."""
    t_in = keras.Input((size, size, 3))
    t = layers.Conv2D(4, 1, activation="relu", name="feat")(t_in)
    t = layers.AveragePooling2D(2, name="pool")(t)
    backbone = keras.Model(t_in, t, name="backbone")
    inp = keras.Input((size, size, 3))
    x = backbone(inp)
    x = layers.Dropout(0.5)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inp, out, name="nested")


def conv_weights(model):
    feat = (model.get_layer("backbone").get_layer("feat") if "backbone" in [l.name for l in model.layers]
            else model.get_layer("feat"))
    w, b = feat.get_weights()
    return w[0, 0], b


def np_features(model, x):
    """relu(x @ Wc + bc), 2x2 average pooled: (B, s/2, s/2, 4)."""
    w, b = conv_weights(model)
    f = np.maximum(x @ w + b, 0.0)
    B, H, W, K = f.shape
    return f.reshape(B, H // 2, 2, W // 2, 2, K).mean(axis=(2, 4))


def np_logits(model, x):
    wd, bd = model.get_layer("logits").get_weights()
    return np_features(model, x).mean(axis=(1, 2)) @ wd + bd


def np_cam(model, x, targets):
    """Reference CAM: relu(features @ W[:, c]), upsampled and min-max normalised."""
    wd, _ = model.get_layer("logits").get_weights()
    f = np_features(model, x)
    cam = np.maximum(np.einsum("bhwk,kb->bhw", f, wd[:, targets]), 0.0)
    return normalize_maps(resize_cam(cam, x.shape[1:3]))


def images(b=3, size=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(b, size, size, 3)).astype("float32")
