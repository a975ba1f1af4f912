"""keras_priors.metrics: prior metrics (keras.ops only, float32 state, TF, JAX and torch).

- ``CAMEnergyInMask`` / ``cam_energy_in_mask``: share of a class's positive CAM
  energy inside the object mask.
- ``WorstGroupAccuracy`` (+ ``pack_label_and_group``): lowest per-group accuracy;
  ``predicted_labels``: logits to predicted classes.
- ``ExpectedCalibrationError``: ECE over equal-width confidence bins.
"""

from keras_priors.metrics.cam_energy_in_mask import CAMEnergyInMask, cam_energy_in_mask
from keras_priors.metrics.expected_calibration_error import ExpectedCalibrationError
from keras_priors.metrics.worst_group_accuracy import WorstGroupAccuracy, pack_label_and_group, predicted_labels

__all__ = [
    "CAMEnergyInMask",
    "ExpectedCalibrationError",
    "WorstGroupAccuracy",
    "cam_energy_in_mask",
    "pack_label_and_group",
    "predicted_labels",
]
