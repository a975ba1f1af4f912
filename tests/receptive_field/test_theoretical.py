"""Theoretical receptive fields: hand-derived small nets, published architectures, errors.

Published values come from the table in google-research/receptive_field's
README (https://github.com/google-research/receptive_field, also Araujo et al.,
Distill 2019): vgg_16 RF 212 / stride 32 / padding 90, resnet_v1_50 RF 483 /
stride 32 / padding 239, mobilenet_v1 RF 315 / stride 32 / padding 126.
"""

import keras
import numpy as np
import pytest

from keras_priors.receptive_field import (
    ReceptiveField,
    ReceptiveFieldAlignmentError,
    UnsupportedLayerError,
    compute_receptive_fields,
    format_table,
    input_gradients,
    load_model_for_rf,
    rf_table_for,
)

L = keras.layers


def _model(inp, out):
    return keras.Model(inp, out)


# ---------------------------------------------------------------- hand-derived


@pytest.mark.parity
def test_conv_pool_chain_hand_derived():
    # conv3 s1 valid -> conv3 s2 valid -> maxpool2 s2
    # r: 1 -> 3 -> 3+2*1=5 -> 5+1*2=7 ; j: 1 -> 1 -> 2 -> 4 ; P: 0 ; centre0 = (r-1)/2
    x = keras.Input((17, 17, 1))
    y = L.Conv2D(1, 3, name="c1")(x)
    y = L.Conv2D(1, 3, strides=2, name="c2")(y)
    y = L.MaxPooling2D(2, name="pool")(y)
    rfs = compute_receptive_fields(_model(x, y))
    assert list(rfs) == ["c1", "c2", "pool"]
    assert rfs["c1"].size == (3, 3) and rfs["c1"].stride == (1, 1) and rfs["c1"].center_offset == (1, 1)
    assert rfs["c2"].size == (5, 5) and rfs["c2"].stride == (2, 2)
    assert rfs["pool"].size == (7, 7) and rfs["pool"].stride == (4, 4)
    assert rfs["pool"].padding == (0, 0) and rfs["pool"].center_offset == (3, 3)
    assert rfs["pool"].output_size == (3, 3)  # 17 -> 15 -> 7 -> 3
    assert rfs["pool"].center(1, 2) == (7, 11)
    assert rfs["pool"].box(0, 0) == (0, 0, 6, 6)


@pytest.mark.parity
def test_anisotropic_kernel_dilation_and_conv1d_causal():
    x = keras.Input((20, 30, 2))
    y = L.Conv2D(2, (3, 5), dilation_rate=(2, 1), padding="valid", name="c")(x)
    y = L.Conv2D(2, (1, 2), strides=(1, 2), name="s")(y)
    rfs = compute_receptive_fields(_model(x, y))
    assert rfs["c"].size == (5, 5) and rfs["c"].stride == (1, 1) and rfs["c"].padding == (0, 0)
    assert rfs["s"].size == (5, 6) and rfs["s"].stride == (1, 2) and rfs["s"].output_size == (16, 13)

    x1 = keras.Input((16, 1))
    y1 = L.Conv1D(1, 3, padding="causal", dilation_rate=2, name="causal")(x1)
    rf1 = compute_receptive_fields(_model(x1, y1))["causal"]
    # k_eff = 5, all padding on the left: unit t sees t-4..t
    assert rf1.size == (5,) and rf1.padding == (4,) and rf1.box(7) == (3, 7)


@pytest.mark.parity
@pytest.mark.parametrize("n, expected_pad", [(8, 0), (9, 1)])
def test_same_padding_depends_on_input_size(n, expected_pad):
    # TF 'same': total = max((ceil(n/s)-1)*s + k - n, 0); left = total // 2
    # n=8, k=3, s=2: (4-1)*2+3-8 = 1 -> left 0 ; n=9: (5-1)*2+3-9 = 2 -> left 1
    x = keras.Input((n, n, 1))
    y = L.Conv2D(1, 3, strides=2, padding="same", name="c")(x)
    rf = compute_receptive_fields(_model(x, y))["c"]
    assert rf.padding == (expected_pad, expected_pad)
    assert rf.center_offset == (1 - expected_pad,) * 2


def test_same_padding_unknown_input_is_flagged_not_guessed():
    x = keras.Input((None, None, 1))
    y = L.Conv2D(1, 3, strides=2, padding="same", name="c")(x)
    y = L.Conv2D(1, 3, padding="same", name="d")(y)
    rfs = compute_receptive_fields(_model(x, y))
    assert rfs["d"].size == (7, 7) and rfs["d"].stride == (2, 2)
    assert rfs["d"].padding == (None, None)
    assert any("input size" in n for n in rfs["d"].notes)
    with pytest.raises(ValueError, match="input_shape"):
        rfs["d"].center(0, 0)
    # Given the size, the answer is exact.
    rfs9 = compute_receptive_fields(_model(x, y), input_shape=(9, 9))
    assert rfs9["d"].padding == (1 + 1 * 2, 3)
    # Even kernel, stride 2: left pad does not depend on n (google-research rule).
    y2 = L.Conv2D(1, 4, strides=2, padding="same", name="e")(x)
    assert compute_receptive_fields(_model(x, y2))["e"].padding == (1, 1)
    # stride 1 'same': (k-1)//2 whatever n
    y3 = L.Conv2D(1, 5, padding="same", name="f")(x)
    assert compute_receptive_fields(_model(x, y3))["f"].padding == (2, 2)


@pytest.mark.parity
def test_padding_cropping_and_depthwise_separable():
    x = keras.Input((12, 12, 2))
    y = L.ZeroPadding2D(((1, 0), (2, 3)), name="zp")(x)
    y = L.DepthwiseConv2D(3, name="dw")(y)
    y = L.Cropping2D(((1, 1), (0, 2)), name="crop")(y)
    y = L.SeparableConv2D(2, 3, strides=2, name="sep")(y)
    y = L.AveragePooling2D(3, strides=1, padding="same", name="avg")(y)
    rfs = compute_receptive_fields(_model(x, y))
    assert rfs["zp"].padding == (1, 2) and rfs["zp"].size == (1, 1)
    assert rfs["dw"].size == (3, 3) and rfs["dw"].padding == (1, 2)
    assert rfs["crop"].padding == (0, 2)
    assert rfs["sep"].size == (5, 5) and rfs["sep"].stride == (2, 2) and rfs["sep"].padding == (0, 2)
    # avg pool 3 same stride 1 at j=2: r = 5 + 2*2 = 9, P = 0 + 1*2 ; (0,2)+(2,2)
    assert rfs["avg"].size == (9, 9) and rfs["avg"].padding == (2, 4)
    assert rfs["avg"].center_offset == (2, 0)


def test_pointwise_pass_through_and_global_end():
    x = keras.Input((10, 10, 3))
    y = L.Rescaling(1 / 255.0)(x)
    y = L.Conv2D(4, 3, name="c")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.ReLU(name="relu")(y)
    y = L.Dropout(0.1, name="drop")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    y = L.Dense(2, name="dense")(y)
    rfs = compute_receptive_fields(_model(x, y))
    for name in ("bn", "relu", "drop"):
        assert rfs[name].size == (3, 3) and rfs[name].stride == (1, 1)
    assert rfs["gap"].is_global and rfs["gap"].size == (10, 10)
    assert rfs["dense"].is_global
    assert "| gap | GlobalAveragePooling2D | 1 | 10 | - | - | - | global (whole input) |" in format_table(rfs)
    with pytest.raises(ValueError, match="global"):
        rfs["gap"].center(0, 0)


def test_merges_aligned_take_max():
    # Inception-like: 1x1, 3x3, 5x5 'same' branches -> concat: RF 5, centres aligned.
    x = keras.Input((9, 9, 1))
    a = L.Conv2D(1, 1, padding="same", name="b1")(x)
    b = L.Conv2D(1, 3, padding="same", name="b3")(x)
    c = L.Conv2D(1, 5, padding="same", name="b5")(x)
    y = L.Concatenate(name="cat")([a, b, c])
    r = L.Add(name="res")([L.Conv2D(3, 3, padding="same", name="after")(y), y])
    rfs = compute_receptive_fields(_model(x, r))
    assert rfs["cat"].size == (5, 5) and rfs["cat"].padding == (2, 2) and rfs["cat"].center_offset == (0, 0)
    assert rfs["res"].size == (7, 7) and rfs["res"].aligned


def test_merges_misaligned_are_reported():
    x = keras.Input((8, 8, 1))
    conv = L.Conv2D(1, 3, name="conv")(x)                   # 6x6, centre of unit 0 at 1
    crop = L.Cropping2D(((2, 0), (2, 0)), name="crop")(x)   # 6x6, centre of unit 0 at 2
    crop = L.Cropping2D(((0, 0), (0, 0)), name="noop")(crop)
    y = L.Add(name="add")([conv, crop])
    m = _model(x, y)
    with pytest.raises(ReceptiveFieldAlignmentError, match="add.*not aligned.*centres"):
        compute_receptive_fields(m)
    rfs = compute_receptive_fields(m, on_misaligned="flag")
    assert not rfs["add"].aligned and any("not aligned" in n for n in rfs["add"].notes)
    assert "MISALIGNED" in format_table(rfs)
    assert "MISALIGNED" in rf_table_for(m)  # the CLI table flags instead of failing
    with pytest.raises(ReceptiveFieldAlignmentError):
        rf_table_for(m, on_misaligned="raise")
    # Different strides.
    s2 = L.Conv2D(1, 1, strides=2, name="s2")(x)  # 4x4, j=2
    c4 = L.Cropping2D(2, name="c4")(x)            # 4x4, j=1
    with pytest.raises(ReceptiveFieldAlignmentError, match="strides"):
        compute_receptive_fields(_model(x, L.Multiply(name="mul")([s2, c4])))
    with pytest.raises(ValueError, match="on_misaligned"):
        compute_receptive_fields(m, on_misaligned="average")


def test_upsampling_and_transposed_conv_are_bounds():
    x = keras.Input((8, 8, 1))
    y = L.Conv2D(1, 3, strides=2, padding="same", name="down")(x)  # r=3, j=2, P=0
    y = L.UpSampling2D(2, name="up")(y)
    y = L.Conv2DTranspose(1, 3, strides=2, padding="same", name="tconv")(y)
    rfs = compute_receptive_fields(_model(x, y))
    up, tc = rfs["up"], rfs["tconv"]
    # nearest x2: r = 3 + 2*(2-1)/2 = 4, j = 1, P = 0 + 2*(1/2) = 1
    assert (up.size, up.stride, up.padding, up.exact) == ((4, 4), (1, 1), (1, 1), False)
    # k=3, s=2, 'same' left pad = (3-2)//2 = 0: r = 4 + 1*2/2 = 5, j = 0.5, P = 1 + 1*(2-0)/2 = 2
    assert (tc.size, tc.stride, tc.padding) == ((5, 5), (0.5, 0.5), (2, 2))


def test_bounds_contain_true_dependencies_for_transposed_conv():
    # Gradient support of each output unit lies within the (bounding) theoretical box.
    x = keras.Input((6, 6, 1))
    y = L.Conv2D(1, 3, padding="same", kernel_initializer="ones", use_bias=False, name="c")(x)
    y = L.Conv2DTranspose(1, 3, strides=2, padding="valid", kernel_initializer="ones",
                          use_bias=False, name="t")(y)
    y = L.UpSampling2D(2, name="up")(y)
    m = _model(x, y)
    rf = compute_receptive_fields(m)["up"]
    xs = np.random.default_rng(0).uniform(size=(1, 6, 6, 1)).astype("float32")
    for unit in [(0, 0), (5, 7), (13, 12), (20, 21)]:
        g = np.abs(input_gradients(m, xs, unit))[0, :, :, 0]
        ys, xs_ = np.nonzero(g)
        y0, x0, y1, x1 = rf.box(*unit)
        assert ys.min() >= y0 - 1e-9 and ys.max() <= y1 + 1e-9
        assert xs_.min() >= x0 - 1e-9 and xs_.max() <= x1 + 1e-9


def _positive_net(size=21):
    x = keras.Input((size, size, 1))
    k = dict(kernel_initializer="ones", use_bias=False)
    y = L.ZeroPadding2D(((1, 0), (0, 2)))(x)
    y = L.Conv2D(2, 3, strides=2, padding="valid", name="c1", **k)(y)
    y = L.AveragePooling2D(3, strides=1, padding="same", name="avg")(y)
    a = L.Conv2D(2, 3, dilation_rate=2, padding="same", name="dil", **k)(y)
    y = L.Add(name="res")([a, y])
    y = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw", depthwise_initializer="ones",
                          use_bias=False)(y)
    y = L.SeparableConv2D(1, (2, 3), padding="same", name="sep", depthwise_initializer="ones",
                          pointwise_initializer="ones", use_bias=False)(y)
    return _model(x, y)


def test_theoretical_box_matches_gradient_support():
    """Exact layers: the support of d unit / d input spans exactly the theoretical box."""
    size = 31
    m = _positive_net(size)
    rfs = compute_receptive_fields(m)
    xs = np.ones((1, size, size, 1), "float32")
    exact_checks = 0
    for name in ("c1", "avg", "res", "dw", "sep"):
        sub = keras.Model(m.inputs, m.get_layer(name).output)
        rf = rfs[name]
        n = rf.output_size
        for unit in [(n[0] // 2, n[1] // 2), (1, 2), (0, 0), (n[0] - 1, n[1] - 1), (n[0] - 2, 1)]:
            g = np.abs(input_gradients(sub, xs, unit))[0, :, :, 0]
            ys, xs_ = np.nonzero(g > 0)
            y0, x0, y1, x1 = rf.box(*unit)
            assert y0 <= ys.min() and ys.max() <= y1 and x0 <= xs_.min() and xs_.max() <= x1, name
            if y0 >= 0 and x0 >= 0 and y1 < size and x1 < size:  # not clipped by the border
                assert (ys.min(), xs_.min(), ys.max(), xs_.max()) == (y0, x0, y1, x1), (name, unit)
                exact_checks += 1
    assert exact_checks >= 6


def test_nested_backbone_and_sequential():
    inner_in = keras.Input((16, 16, 3))
    h = L.Conv2D(4, 3, strides=2, padding="same", name="conv1")(inner_in)
    h = L.Conv2D(4, 3, padding="same", name="conv2")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    x = keras.Input((16, 16, 3))
    y = backbone(x)
    y = L.Conv2D(2, 3, name="head_conv")(y)
    y = L.GlobalMaxPooling2D(name="gmp")(y)
    rfs = compute_receptive_fields(keras.Model(x, y))
    assert "backbone/conv1" in rfs and "backbone/conv2" in rfs
    assert rfs["backbone/conv2"].size == (7, 7)
    assert rfs["head_conv"].size == (11, 11) and rfs["head_conv"].stride == (2, 2)
    # 16 even, k3 s2 same -> left 0; conv2 P = 1*2 -> 2; head_conv valid -> 2
    assert rfs["head_conv"].padding == (2, 2)

    seq = keras.Sequential([keras.Input((10, 10, 1)), L.Conv2D(1, 3, name="a"),
                            L.MaxPooling2D(name="p"), L.Conv2D(1, 3, name="b")])
    srf = compute_receptive_fields(seq)
    assert srf["b"].size == (8, 8) and srf["b"].stride == (2, 2)


def test_two_input_model_uses_chosen_image_input():
    img = keras.Input((8, 8, 3), name="image")
    meta = keras.Input((4,), name="meta")
    y = L.Conv2D(4, 3, name="c")(img)
    g = L.Reshape((1, 1, 4))(L.Dense(4)(meta))
    y = L.Multiply(name="gate")([y, g])
    rfs = compute_receptive_fields(keras.Model([meta, img], y))
    assert rfs["gate"].size == (3, 3)
    with pytest.raises(ValueError, match="input_name"):
        compute_receptive_fields(keras.Model([meta, img], y), input_name="nope")


# ---------------------------------------------------------------- bad input


def test_no_spatial_input_raises():
    x = keras.Input((10,))
    with pytest.raises(ValueError, match="no input with spatial axes"):
        compute_receptive_fields(keras.Model(x, L.Dense(2)(x)))
    x2 = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="no spatial layer"):
        compute_receptive_fields(keras.Model(x2, L.GlobalAveragePooling2D()(x2)))


def test_unsupported_layer_raises_naming_it():
    x = keras.Input((16, 16, 3))
    y = L.Resizing(8, 8, name="resize")(x)
    with pytest.raises(UnsupportedLayerError, match="resize.*Resizing.*not supported"):
        compute_receptive_fields(keras.Model(x, L.Conv2D(1, 3)(y)))
    y2 = L.Lambda(lambda t: t[:, ::2, ::2, :], name="subsample")(x)
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        compute_receptive_fields(keras.Model(x, y2))
    with pytest.raises(UnsupportedLayerError, match="spatial axis 1"):
        compute_receptive_fields(keras.Model(x, L.Concatenate(axis=1, name="stack")([x, x])))
    with pytest.raises(UnsupportedLayerError, match="Reshape"):
        compute_receptive_fields(keras.Model(x, L.Reshape((8, 32, 3))(x)))
    ok = compute_receptive_fields(
        keras.Model(x, L.Reshape((16, 16, 3, 1), name="r")(L.Conv2D(3, 3, padding="same")(x))))
    assert ok["r"].size == (3, 3)
    with pytest.raises(ValueError, match="input_shape"):
        compute_receptive_fields(keras.Model(x, L.Conv2D(1, 3)(x)), input_shape=(1, 2, 3, 4))
    with pytest.raises(ValueError, match="disagrees"):
        compute_receptive_fields(keras.Model(x, L.Conv2D(1, 3)(x)), input_shape=(32, 32))


def test_subclassed_model_and_unknown_application_raise():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional or Sequential"):
        compute_receptive_fields(Sub())
    with pytest.raises(ValueError, match="Closest names.*ResNet50"):
        rf_table_for("resnet5O")
    with pytest.raises(TypeError, match="keras.Model"):
        rf_table_for(42)


# ---------------------------------------------------------------- tables


def test_format_table_and_rf_table_for_saved_model(tmp_path):
    x = keras.Input((9, 9, 1))
    y = L.Conv2D(1, 3, strides=2, name="c")(x)
    y = L.ReLU(name="r")(y)
    m = keras.Model(x, y, name="tiny")
    rfs = compute_receptive_fields(m)
    table = format_table(rfs)
    assert "| c | Conv2D | 4 | 3 | 2 | 0 | 1 |" in table
    assert "| r |" in table
    assert "| r |" not in format_table(rfs, spatial_only=True)
    path = str(tmp_path / "tiny.keras")
    m.save(path)
    text = rf_table_for(path)
    assert text.startswith("Receptive fields of tiny") and "| c | Conv2D |" in text
    assert isinstance(rfs["c"], ReceptiveField)


def test_rf_table_for_zoo_name():
    pytest.importorskip("keras_priors.zoo")
    text = rf_table_for("resnet_tiny", input_shape=(32, 32, 3))
    assert text.startswith("Receptive fields of resnet_tiny") and "| stem_conv | Conv2D | 32 | 3 | 1 | 1 | 0 |" in text


# ---------------------------------------------------------------- published values


def test_vgg16_matches_published_212():
    """google-research/receptive_field README: vgg_16 RF 212, stride 32, padding 90.

    keras.applications.VGG16 is the same architecture (13 'same' 3x3 convs,
    five 2x2/2 max pools), so all three numbers agree at block5_pool.
    """
    model = load_model_for_rf("vgg16", input_shape=(224, 224, 3))
    rf = compute_receptive_fields(model)["block5_pool"]
    assert (rf.size, rf.stride, rf.padding) == ((212, 212), (32, 32), (90, 90))
    assert rf.output_size == (7, 7)
    assert "| block5_pool | MaxPooling2D | 7 | 212 | 32 | 90 |" in rf_table_for(model)


def test_resnet50_vs_published_483():
    """Published resnet_v1_50 (TF-slim): RF 483, stride 32, padding 239.

    keras.applications.ResNet50 puts the stride in the first 1x1 conv of each
    stage instead of slim's 3x3 conv of the last unit of the previous stage; the
    RF is the same (each 3x3 still adds 2 x the same effective stride) : 483.
    The padding differs by 2: keras pads pool1 explicitly (ZeroPadding2D(1) +
    'valid' 3x3/2 max pool, left pad 1 at j=2), while slim's 'SAME' max pool on
    the even 112 px map has left pad 0. Hand check: 239 + 1 * 2 = 241.
    """
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
    rfs = compute_receptive_fields(model)
    rf = rfs["conv5_block3_out"]
    assert (rf.size, rf.stride, rf.padding) == ((483, 483), (32, 32), (241, 241))
    assert rfs["pool1_pool"].padding == (3 + 1 * 2,) * 2 and rfs["pool1_pool"].size == (11, 11)
    assert rf.center(0, 0) == (0, 0) and rf.center(3, 3) == (96, 96)


def test_mobilenet_v1_matches_published_315():
    """Published mobilenet_v1: RF 315, stride 32, padding 126 (keras pads
    strided layers with ZeroPadding2D(((0, 1), (0, 1))), the same left padding 0
    as TF 'SAME' with an even input)."""
    model = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(224, 224, 3))
    rf = compute_receptive_fields(model)["conv_pw_13_relu"]
    assert (rf.size, rf.stride, rf.padding) == ((315, 315), (32, 32), (126, 126))
