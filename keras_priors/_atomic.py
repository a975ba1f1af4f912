"""Write files so that an interrupted process never leaves a half-written one."""

from __future__ import annotations

import os


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.replace(tmp, path)


def save_model_atomic(model, path: str) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file renamed into place."""
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
