"""Write a PNG grid of examples with the object-mask outline and the part box drawn on."""

from __future__ import annotations

import os

import numpy as np

_OUTLINE = np.array([1.0, 0.1, 0.1], np.float32)  # object mask outline: red
_BOX = np.array([1.0, 0.9, 0.0], np.float32)  # part box: yellow


def _take(data, n: int) -> dict:
    """First ``n`` examples of a dict of arrays or a (batched or not) dataset, as numpy."""
    if isinstance(data, dict):
        return {k: np.asarray(v)[:n] for k, v in data.items()}
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        raise ValueError(f"Expected a dict of arrays or a tf.data.Dataset. Received: {type(data).__name__}")
    spec = data.element_spec
    batched = spec["image"].shape.rank == 4
    if batched:
        data = data.unbatch()
    rows = list(data.take(n).as_numpy_iterator())
    if not rows:
        raise ValueError("Expected a non-empty dataset to preview. Received: no examples")
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def mask_outline(mask) -> np.ndarray:
    """Boolean outline of binary masks: the mask pixels with a 4-neighbour outside the mask.

    A pixel on the image border counts as next to the outside, so a mask that
    touches the border is closed there. Used by ``preview`` and
    ``kp.callbacks.cam_overlay_grid``; draw it with ``image[outline] = colour``.

    Args:
        mask: ``(..., H, W)`` masks (e.g. ``(H, W)`` or ``(B, H, W)``);
            values above 0.5 are inside.

    Returns:
        A bool array of the same shape.

    Example:

    >>> import numpy as np
    >>> mask = np.zeros((5, 5), "float32"); mask[1:4, 1:4] = 1.0
    >>> mask_outline(mask).astype(int).tolist()
    [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]
    """
    m = np.asarray(mask) > 0.5
    if m.ndim < 2:
        raise ValueError(f"mask_outline: Expected `mask` of shape (..., H, W). Received: mask with shape {m.shape}")
    p = np.pad(m, [(0, 0)] * (m.ndim - 2) + [(1, 1), (1, 1)])
    interior = p[..., :-2, 1:-1] & p[..., 2:, 1:-1] & p[..., 1:-1, :-2] & p[..., 1:-1, 2:]
    return m & ~interior


def render_grid(examples: dict, n: int = 16, scale: int = 2) -> np.ndarray:
    """Draw overlays and tile up to ``n`` examples into one uint8 (H, W, 3) image."""
    images = np.asarray(examples["image"], np.float32)[:n]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    count, h, w = images.shape[:3]
    tiles = []
    for i in range(count):
        img = np.clip(images[i], 0.0, 1.0).copy()
        if "object_mask" in examples:
            img[mask_outline(examples["object_mask"][i][..., 0])] = _OUTLINE
        if "part_box" in examples:
            y1, x1, y2, x2 = np.asarray(examples["part_box"][i], np.float32)
            r1, r2 = int(round(y1 * (h - 1))), int(round(y2 * (h - 1)))
            c1, c2 = int(round(x1 * (w - 1))), int(round(x2 * (w - 1)))
            if r2 >= r1 and c2 >= c1 and (r2 > 0 or c2 > 0):
                img[r1:r2 + 1, [c1, c2]] = _BOX
                img[[r1, r2], c1:c2 + 1] = _BOX
        tiles.append(np.kron(img, np.ones((scale, scale, 1), np.float32)))
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    th, tw = h * scale, w * scale
    grid = np.ones((rows * (th + 2) + 2, cols * (tw + 2) + 2, 3), np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[2 + r * (th + 2): 2 + r * (th + 2) + th, 2 + c * (tw + 2): 2 + c * (tw + 2) + tw] = t
    return (grid * 255).round().astype(np.uint8)


def preview(dataset_or_dict, path: str, n: int = 16) -> str:
    """Write a PNG grid of ``n`` examples with object-mask outlines (red) and part boxes (yellow).

    Uses matplotlib when it is installed (titles show label and group), else
    plain numpy and ``tf.io.encode_png``.

    Args:
        dataset_or_dict: a dict of arrays or a ``tf.data.Dataset`` of dicts.
        path: output PNG path (folders are created).
        n: number of examples.

    Returns:
        The path written.
    """
    if int(n) < 1:
        raise ValueError(f"Expected `n` >= 1. Received: n={n}")
    examples = _take(dataset_or_dict, int(n))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is None:
        import tensorflow as tf

        tf.io.write_file(path, tf.io.encode_png(render_grid(examples, n)))
        return path
    count = len(examples["image"])
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        one = {k: v[i: i + 1] for k, v in examples.items()}
        ax.imshow(render_grid(one, 1, scale=1)[2:-2, 2:-2], interpolation="nearest")
        title = [f"{k}={int(one[k][0])}" for k in ("label", "aux_label", "group") if k in one]
        ax.set_title(" ".join(title), fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
