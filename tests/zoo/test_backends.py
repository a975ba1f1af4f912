"""Zoo training on whichever backend runs the tests (the parity subset runs these on JAX)."""

import keras
import numpy as np
import pytest
from harness import to_numpy

from keras_priors import callbacks, priors, zoo


@pytest.mark.parity
def test_fit_with_priors_on_this_backend(kakapo32, tmp_path):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[
        priors.CAMSuppression(classes=[0]), priors.MaskDecoder(levels=2, filters=8),
        priors.Auxiliary(num_classes=5, exclude_classes=[0]), priors.ConfidencePenalty(0.1),
        priors.SpatialAttention(target="part_mask"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = {k: v for k, v in kakapo32.items()}
    cb = callbacks.CAMImages({k: v[:4] for k, v in data.items()}, log_dir=str(tmp_path))
    history = model.fit(data, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    for key in ("cam_suppression_loss", "mask_decoder_loss", "auxiliary_loss", "confidence_penalty_loss",
                "spatial_attention_loss"):
        assert np.all(np.isfinite(history.history[key])), key
    assert history.history["loss"][1] < history.history["loss"][0]
    out = model({"image": data["image"][:4]})
    bias = to_numpy(model.network.get_layer("classifier").bias)
    np.testing.assert_allclose(to_numpy(out["logits"]), to_numpy(out["cam"]).mean(axis=(1, 2)) + bias, atol=1e-5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(to_numpy(keras.saving.load_model(path)({"image": data["image"][:4]})["logits"]),
                               to_numpy(out["logits"]), atol=1e-5)


@pytest.mark.parity
def test_missing_key_error_on_this_backend(kakapo32):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.MaskDecoder()])
    model.compile(optimizer="adam")
    data = {k: v for k, v in kakapo32.items() if k != "part_mask"}
    with pytest.raises(ValueError, match=r"MaskDecoder needs the data key\(s\) \['part_mask'\]"):
        model.fit(data, batch_size=16, epochs=1, verbose=0)


def test_fit_mixed_precision_and_xla(kakapo32):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[
            priors.CAMSuppression(classes=[0]), priors.MaskDecoder(levels=2, filters=8), priors.ConfidencePenalty(0.1)])
    finally:
        keras.config.set_dtype_policy("float32")
    assert keras.backend.standardize_dtype(model.network.output["cam"].dtype) == "float16"
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit({k: v for k, v in kakapo32.items()}, batch_size=16, epochs=1, verbose=0)
    for key in ("loss", "cam_suppression_loss", "mask_decoder_loss"):
        assert np.isfinite(history.history[key][0]), key
