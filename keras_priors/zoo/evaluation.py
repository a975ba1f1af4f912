"""Evaluate a zoo classifier on the numbers that show whether a prior helped."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_priors.metrics import ExpectedCalibrationError, WorstGroupAccuracy, cam_energy_in_mask, predicted_labels
from keras_priors.validation import renamed_arguments

#: Result keys renamed since 0.1: ``{old: new}`` (``read_result`` maps them).
RENAMED_RESULT_KEYS = {"cam_in_mask": "cam_energy_in_mask"}


def read_result(record: dict) -> dict:
    """A results record with the keys of this version: ``cam_in_mask`` (0.1) is read as ``cam_energy_in_mask``.

    For results files written before the rename (the evidence benchmark's
    ``results.jsonl`` before 0.2); a record that has both keeps the new one.

    Example:

    >>> read_result({"accuracy": 0.9, "cam_in_mask": 0.5})
    {'accuracy': 0.9, 'cam_energy_in_mask': 0.5}
    """
    out = {}
    for key, value in record.items():
        new = RENAMED_RESULT_KEYS.get(key)
        if new is None:
            out[key] = value
        elif new not in record:
            out[new] = value
    return out


@renamed_arguments(mask_key="mask")
def evaluate_classifier(model, dataset, num_groups: int | None = None, mask: str = "object_mask") -> dict:
    """Accuracy, worst-group accuracy, CAM energy inside the mask and ECE on ``dataset``.

    Args:
        model: a ``PriorModel`` (or any model returning ``{"logits", "cam"}`` on dict batches).
        dataset: an iterable of dict batches (``image``, ``label``, and
            ``group`` / ``object_mask`` for those metrics).
        num_groups: the number of groups; default ``max(group) + 1`` seen.
        mask: the data key of the object mask for the CAM energy share.
            (``mask_key`` before 0.2: still accepted, with a ``DeprecationWarning``.)

    Returns:
        ``{"accuracy", "worst_group_accuracy", "cam_energy_in_mask", "ece", "group_accuracy", "n"}``
        (``cam_in_mask`` before 0.2; ``read_result`` maps old records)
        (a metric is ``nan`` when the data lacks its key).
    """
    labels, groups, logits_all, shares = [], [], [], []
    for batch in dataset:
        out = model(batch, training=False)
        logits = np.asarray(ops.convert_to_numpy(ops.cast(out["logits"], "float32")))
        label = np.asarray(batch["label"]).reshape(-1)
        logits_all.append(logits)
        labels.append(label)
        if "group" in batch:
            groups.append(np.asarray(batch["group"]).reshape(-1))
        if mask in batch and "cam" in out:
            shares.append(np.asarray(ops.convert_to_numpy(cam_energy_in_mask(out["cam"], batch[mask], label))))
    if not labels:
        raise ValueError("evaluate_classifier: Expected a non-empty dataset. Received: no batches")
    logits = np.concatenate(logits_all)
    labels = np.concatenate(labels).astype(np.int64)
    pred = np.asarray(ops.convert_to_numpy(predicted_labels(logits))).astype(np.int64)
    result = {"n": int(labels.size), "accuracy": float((pred == labels).mean())}

    ece = ExpectedCalibrationError(num_bins=15, from_logits=True)
    ece.update_state(labels, logits)
    result["ece"] = float(ops.convert_to_numpy(ece.result()))

    if groups:
        groups = np.concatenate(groups).astype(np.int64)
        n_groups = num_groups or int(groups.max()) + 1
        wga = WorstGroupAccuracy(num_groups=n_groups)
        wga.update_state(np.stack([labels, groups], axis=-1), logits)
        result["worst_group_accuracy"] = float(ops.convert_to_numpy(wga.result()))
        result["group_accuracy"] = {
            int(g): float((pred[groups == g] == labels[groups == g]).mean()) for g in np.unique(groups)
        }
    else:
        result["worst_group_accuracy"] = float("nan")
        result["group_accuracy"] = {}
    result["cam_energy_in_mask"] = float(np.concatenate(shares).mean()) if shares else float("nan")
    return result
