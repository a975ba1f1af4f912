"""Receptive fields: theoretical (graph walk) and effective (input gradients).

- `compute_receptive_fields(model, input_shape=None)`: size, effective stride,
  effective padding and centre of unit 0 for every layer output.
- `format_table` / `rf_table_for`: a readable table (the ``keras-priors rf`` command).
- `effective_receptive_field(model, layer, ...)`: Luo et al. 2016's ERF map and
  its summary numbers; `plot_erf` saves it as a PNG; `ERFImages` logs it to
  TensorBoard during training.
"""

from keras_priors.receptive_field.effective import (
    ERFResult,
    effective_receptive_field,
    feature_submodel,
    input_gradients,
    plot_erf,
)
from keras_priors.receptive_field.erf_images import ERFImages
from keras_priors.receptive_field.theoretical import (
    ReceptiveField,
    ReceptiveFieldAlignmentError,
    UnsupportedLayerError,
    compute_receptive_fields,
    format_table,
    load_model_for_rf,
    rf_table_for,
)

__all__ = [
    "ERFImages",
    "ERFResult",
    "ReceptiveField",
    "ReceptiveFieldAlignmentError",
    "UnsupportedLayerError",
    "compute_receptive_fields",
    "effective_receptive_field",
    "feature_submodel",
    "format_table",
    "input_gradients",
    "load_model_for_rf",
    "plot_erf",
    "rf_table_for",
]
