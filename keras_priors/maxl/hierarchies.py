"""Class hierarchies for MAXL and human-auxiliary baselines: coarse primary labels, fine auxiliary labels.

A hierarchy is a tuple of ``(group name, fine class ids)`` pairs. Group ``i``
is primary class ``i``; its fine classes become auxiliary classes
``offset_i .. offset_i + len(group_i) - 1`` (block order, the layout of
:func:`keras_priors.maxl.hierarchy_mask`), so ``psi`` is the group sizes and
the human auxiliary labels sit in the same blocks MAXL's generator fills.
"""

from __future__ import annotations

import numpy as np

from keras_priors.validation import check_positive_int

#: Fashion-MNIST fine class names, in label order.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: Three coarse groups of Fashion-MNIST: tops, footwear, other (psi = [5, 3, 2]).
FASHION_MNIST_HIERARCHY = (
    ("tops", (0, 2, 4, 6, 3)),      # T-shirt/top, Pullover, Coat, Shirt, Dress
    ("footwear", (5, 7, 9)),        # Sandal, Sneaker, Ankle boot
    ("other", (1, 8)),              # Trouser, Bag
)


def hierarchy_tables(hierarchy):
    """``(coarse, aux, psi)`` for a hierarchy over fine classes ``0..n-1``.

    Args:
        hierarchy: tuple of ``(name, fine ids)``; every fine id in
            ``0..n-1`` must appear exactly once.

    Returns:
        ``coarse[f]``: the primary class of fine class ``f``; ``aux[f]``: its
        auxiliary class in block order; ``psi``: group sizes.

    Example:
        >>> coarse, aux, psi = hierarchy_tables((("a", (2, 0)), ("b", (1,))))
        >>> coarse.tolist(), aux.tolist(), psi
        ([0, 1, 0], [1, 2, 0], [2, 1])
    """
    fine = [int(f) for _, ids in hierarchy for f in ids]
    if not fine or sorted(fine) != list(range(len(fine))):
        raise ValueError(
            "hierarchy_tables: Expected every fine class 0..n-1 exactly once across the groups. "
            f"Received: {[(name, list(ids)) for name, ids in hierarchy]}")
    coarse = np.empty(len(fine), np.int32)
    aux = np.empty(len(fine), np.int32)
    psi, offset = [], 0
    for g, (_, ids) in enumerate(hierarchy):
        if len(ids) == 0:
            raise ValueError(f"hierarchy_tables: Expected every group to hold a class. Received: group {g} is empty")
        for j, f in enumerate(ids):
            coarse[f], aux[f] = g, offset + j
        psi.append(len(ids))
        offset += len(ids)
    return coarse, aux, psi


def fashion_mnist_hierarchy(split=("train", "test"), num_samples=None, seed: int = 0, path: str | None = None,
                            hierarchy=FASHION_MNIST_HIERARCHY):
    """Fashion-MNIST with coarse primary labels and fine auxiliary labels.

    Args:
        split: ``"train"``, ``"test"`` or a tuple of them.
        num_samples: images per split (int, or dict ``{split: n}``), drawn
            at random without replacement (stratified by nothing: a uniform
            subset); None keeps every image.
        seed: seed of the subset.
        path: folder with the IDX files (default: Debian's, then the Keras
            cache; see :func:`keras_priors.data.load_fashion_mnist`).
        hierarchy: the groups (default :data:`FASHION_MNIST_HIERARCHY`:
            tops / footwear / other, ``psi = [5, 3, 2]``).

    Returns:
        Per split a dict with ``image`` float32 ``(N, 28, 28, 1)`` in [0, 1],
        ``label`` (coarse group), ``aux_label`` (fine class in block order)
        and ``fine_label`` (the original Fashion-MNIST label), all int32; a
        tuple of them for a tuple ``split``.

    Example:
        With the real files (``apt-get install dataset-fashion-mnist``):
        ``fashion_mnist_hierarchy("train", num_samples=100)``. Here on a
        folder of IDX files holding one blank image of each class ``0..9``:

        >>> import os, tempfile, numpy as np
        >>> tmp = tempfile.TemporaryDirectory()
        >>> files = {"train-images-idx3-ubyte": np.zeros((10, 28, 28), np.uint8),
        ...          "train-labels-idx1-ubyte": np.arange(10, dtype=np.uint8)}
        >>> for stem, array in files.items():   # IDX: magic 0x0008 + ndim, the sizes, the bytes
        ...     header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        ...     with open(os.path.join(tmp.name, stem), "wb") as f:
        ...         _ = f.write(header + array.tobytes())
        >>> train = fashion_mnist_hierarchy("train", path=tmp.name)
        >>> train["image"].shape, train["fine_label"].tolist()
        ((10, 28, 28, 1), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        >>> train["label"].tolist()       # tops 0, footwear 1, other 2
        [0, 2, 0, 0, 0, 1, 0, 1, 2, 1]
        >>> train["aux_label"].tolist()   # the fine class's place in the blocks of psi = [5, 3, 2]
        [0, 8, 1, 4, 2, 5, 3, 6, 9, 7]
        >>> tmp.cleanup()
    """
    from keras_priors.data import load_fashion_mnist

    single = isinstance(split, str)
    splits = (split,) if single else tuple(split)
    coarse, aux, _ = hierarchy_tables(hierarchy)
    raw = load_fashion_mnist(path=path, split=splits)
    out = []
    for s in splits:
        images, labels = raw[s]["image"], raw[s]["label"].astype(np.int64)
        if labels.size and labels.max() >= len(coarse):
            raise ValueError(
                f"fashion_mnist_hierarchy: Expected the hierarchy to cover every label (0..{labels.max()}). "
                f"Received: a hierarchy over {len(coarse)} classes")
        n = num_samples.get(s) if isinstance(num_samples, dict) else num_samples
        if n is not None:
            n = check_positive_int("num_samples", n, "fashion_mnist_hierarchy")
            if n > len(labels):
                raise ValueError(f"fashion_mnist_hierarchy: Expected num_samples <= {len(labels)} for split {s!r}. "
                                 f"Received: num_samples={n}")
            idx = np.sort(np.random.default_rng([int(seed), ("train", "test").index(s)]).choice(
                len(labels), n, replace=False))
            images, labels = images[idx], labels[idx]
        out.append({
            "image": (images.astype(np.float32) / 255.0)[..., None],
            "label": coarse[labels],
            "aux_label": aux[labels],
            "fine_label": labels.astype(np.int32),
        })
    return out[0] if single else tuple(out)
