"""All losses together in ``compile(loss={...})`` of a user's functional model."""

import keras
import numpy as np
import pytest

from keras_priors.losses import CAMSuppression, ConfidencePenalty, FeatureContraction, MaskLoss, pack_mask_and_label
from keras import ops


@pytest.mark.parity
def test_losses_in_compile_dict_value_and_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 4, 4, 2)).astype("float32")
    mask = (rng.uniform(size=(4, 8, 8, 1)) > 0.5).astype("float32")
    labels = np.array([0, 1, 2, 1])
    inp = keras.Input((4, 4, 2))
    features = keras.layers.Conv2D(3, 1, name="features")(inp)
    mask_logits = keras.layers.Conv2D(1, 1, name="mask")(features)
    logits = keras.layers.GlobalAveragePooling2D(name="logits")(features)
    logits_cp = keras.layers.Identity(name="logits_cp")(logits)
    cam = keras.layers.Identity(name="cam")(features)
    outputs = {"logits": logits, "logits_cp": logits_cp, "features": features, "mask": mask_logits, "cam": cam}
    model = keras.Model(inp, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={
            "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "logits_cp": ConfidencePenalty(beta=0.5),
            "features": FeatureContraction(weight=0.1, feature_reduction="mean"),
            "mask": MaskLoss(),
            "cam": CAMSuppression(classes="true", power=2, normalize="outside_area", evidence="positive"),
        },
    )
    packed = ops.convert_to_numpy(pack_mask_and_label(mask, labels))
    # dummies where ignored
    y = {"logits": labels, "logits_cp": labels, "features": labels, "mask": mask, "cam": packed}
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)

    out = {k: v.astype("float64") for k, v in model.predict(x, verbose=0).items()}
    z = out["logits"] - out["logits"].max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -logp[np.arange(4), labels].mean()
    cp = -0.5 * (-(np.exp(logp) * logp).sum(-1)).mean()
    fc = 0.1 * (out["features"] ** 2).mean(axis=(1, 2, 3)).mean()
    t = mask.reshape(4, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    p = 1 / (1 + np.exp(-out["mask"]))
    dice = 1 - (2 * (p * t).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + t.sum((1, 2, 3)) + 1)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean((1, 2, 3))
    ml = (dice + bce).mean()
    ev = np.maximum(out["cam"][np.arange(4), :, :, labels], 0) ** 2  # (B, 4, 4): true-class evidence
    outside = 1 - t[..., 0]
    cs = ((ev * outside).sum((1, 2)) / outside.sum((1, 2))).mean()
    np.testing.assert_allclose(logs["loss"], ce + cp + fc + ml + cs, atol=1e-5)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
