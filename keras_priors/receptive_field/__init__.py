"""Receptive fields: theoretical (graph walk) and effective (input gradients).

- `compute_receptive_fields(model, input_shape=None)`: size, effective stride,
  effective padding and centre of unit 0 for every layer output.
- `format_table` / `rf_table_for`: a readable table (the ``keras-priors rf`` command).
- `effective_receptive_field(model, layer, ...)`: Luo et al. 2016's ERF map and
  its summary numbers; `high_contribution_area_ratio`: RepLKNet's summary of
  it at t = 20/30/50/99 %; `plot_erf` saves it as a PNG; `ERFImages` logs it to
  TensorBoard during training.
"""

from keras_priors.receptive_field.effective import (
    HIGH_CONTRIBUTION_THRESHOLDS,
    ERFResult,
    effective_receptive_field,
    erf_summary_for,
    feature_submodel,
    format_area_ratios,
    high_contribution_area_ratio,
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
    "erf_summary_for",
    "format_area_ratios",
    "high_contribution_area_ratio",
    "HIGH_CONTRIBUTION_THRESHOLDS",
    "input_gradients",
    "load_model_for_rf",
    "plot_erf",
    "rf_table_for",
]
