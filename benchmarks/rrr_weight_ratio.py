"""The size of the RRR term at initialisation, against the cross-entropy, per evidence study.

Ross et al. found the right input-gradient weights where the weighted term is 0.2 to 30 times the
cross-entropy. This prints, for a freshly initialised ``resnet_tiny`` with ``InputGradient(weight=1)`` and one
training batch of 256 images of each shortcut study (the evidence benchmark's data, seed 0), the
cross-entropy, the unweighted term and their ratio. It trains nothing and looks at no test image.

Usage: ``python benchmarks/rrr_weight_ratio.py``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def main() -> int:
    import keras

    import evidence
    from keras_priors import losses, priors, zoo
    from keras_priors.zoo.prior_model import classification_loss

    print("| study | cross-entropy at init | unweighted RRR term | ratio |")
    print("|---|---|---|---|")
    for name in ("kakapo", "decoy_fmnist", "fmnist_textures"):
        study = evidence.STUDIES[name]
        size = {**evidence.SIZES["default"], **evidence.SIZES["default"]["studies"].get(name, {}),
                "train": 256, "test": 8}
        train, _ = evidence.load_study_data(study, size, 0, True, 1.0)
        keras.utils.set_random_seed(0)
        prior = priors.InputGradient(mask="object_mask")
        model = zoo.build("resnet_tiny", num_classes=study.num_classes,
                          input_shape=(study.image_size, study.image_size, 3), priors=[prior])
        batch = {k: train[k][:256] for k in ("image", "label", "object_mask")}
        out = model(batch, training=True)
        ce = float(classification_loss(batch["label"], out["logits"], study.num_classes))
        term = float(np.mean(keras.ops.convert_to_numpy(
            losses.input_gradient_penalty(out[prior.gradient_key], batch["object_mask"]))))
        print(f"| {name} | {ce:.3f} | {term:.3f} | {term / ce:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
