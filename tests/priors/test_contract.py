"""The closed Prior contract: a prior written outside the package builds, trains, exports, saves and reloads.

``ObjectFraction`` below is a user's prior, defined in this test module with
no edit to ``keras_priors``: a training-only head that predicts the fraction
of the image the object covers, supervised by the object mask.
"""

import ast
import io
import os
import re
import tokenize

import keras
import numpy as np
import pytest
from keras import ops

import keras_priors as kp
from keras_priors import priors
from keras_priors.zoo.prior_model import deserialize_prior, serialize_prior

from harness import run_prior_test, tiny_zoo_model


@keras.saving.register_keras_serializable(package="test_contract")
class ObjectFraction(kp.priors.Prior):
    """A training-only head regresses the object's share of the image; squared error to the mask's mean."""

    def __init__(self, mask="object_mask", weight=1.0, name=None):
        super().__init__(weight=weight, name=name)
        self.mask = mask
        self.required_keys = (mask,)

    def data_spec(self):
        return {self.mask: kp.priors.MASK}

    def add_heads(self, ctx):
        pooled = keras.layers.GlobalAveragePooling2D(name=f"{self.name}_pool")(ctx.features[ctx.last_level])
        ctx.outputs[self.name] = keras.layers.Dense(1, activation="sigmoid", name=f"{self.name}_head")(pooled)
        ctx.training_only.add(self.name)

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        share = ops.mean(ops.cast(targets[self.mask], "float32"), axis=(1, 2))  # (B, 1)
        return {self.name: ops.mean(ops.square(ops.cast(outputs[self.name], "float32") - share))}

    def get_config(self):
        return {**super().get_config(), "mask": self.mask}


def _batch():
    rng = np.random.default_rng(0)
    mask = np.zeros((4, 32, 32, 1), "float32")
    mask[0, :16] = 1  # share 0.5
    mask[2] = 1  # share 1
    mask[3, :, :8] = 1  # share 0.25
    return {"image": rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32"),
            "label": np.array([0, 1, 0, 1], "int32"), "object_mask": mask}


def test_a_user_prior_builds_fits_exports_saves_and_reloads(tmp_path):
    # head outputs 0.5, 0.25, 0.5, 0.25 against shares 0.5, 0, 1, 0.25: squared errors 0, 1/16, 1/4, 0;
    # mean 0.078125, times weight 2
    outputs = {"object_fraction": np.array([[0.5], [0.25], [0.5], [0.25]], "float32")}
    model = run_prior_test(ObjectFraction, {"weight": 2.0}, _batch(), outputs=outputs,
                           expected_loss={"object_fraction": 0.15625}, expected_training_only=["object_fraction"])
    assert "object_fraction" in model.network.output
    assert "object_fraction" not in model.inference_model().output
    assert not any("object_fraction" in w.path for w in model.inference_model().weights)  # the head is not exported
    path = str(tmp_path / "user_prior.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded.priors[0]) is ObjectFraction and reloaded.priors[0].weight == 2.0
    history = reloaded.fit(_batch(), epochs=1, batch_size=4, verbose=0).history  # trains on after reloading
    assert np.isfinite(history["object_fraction_loss"][0])


@pytest.mark.parity
def test_a_user_prior_exports_through_a_tensorflow_process(tmp_path):
    # What PriorModel.export does where the backend cannot write a format itself (SavedModel from torch): a
    # TensorFlow child process loads the .keras archive, so it must import this module to find ObjectFraction.
    tf = pytest.importorskip("tensorflow")
    from keras_priors.zoo.export import _export_through_tensorflow

    model = tiny_zoo_model([ObjectFraction()])
    path = _export_through_tensorflow(model, str(tmp_path / "sm"), "tf_saved_model", verbose=False, overwrite=False)
    loaded = tf.saved_model.load(path)
    images = _batch()["image"]
    served = loaded.serve({"image": tf.constant(images)})
    assert sorted(served) == ["logits", "probabilities"]  # the training-only head is not served
    np.testing.assert_allclose(served["logits"].numpy(), ops.convert_to_numpy(model({"image": images})["logits"]),
                               atol=1e-4)
    assert os.listdir(tmp_path) == ["sm"]


def test_a_user_prior_missing_its_key_fails_before_the_first_step():
    model = tiny_zoo_model([ObjectFraction(mask="bird_mask")])
    model.compile(optimizer="adam")
    batch = _batch()
    with pytest.raises(ValueError, match=r"ObjectFraction needs the data key\(s\) \['bird_mask'\]"):
        model.fit(batch, epochs=1, verbose=0)
    batch["bird_mask"] = batch.pop("object_mask")[:, :, :, 0]  # (B, H, W): not the declared (H, W, 1)
    with pytest.raises(ValueError, match=r"ObjectFraction expects the data's 'bird_mask' as batches of shape "
                                         r"\(batch,\) \+ \('H', 'W', 1\)"):
        model.fit(batch, epochs=1, verbose=0)
    batch["bird_mask"] = batch["bird_mask"][..., None] * 255  # a mask declared by the prior is value-checked
    with pytest.raises(ValueError, match=r"'bird_mask' in \[0, 1\]\. Received: min 0, max 255"):
        model.fit(batch, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0


@keras.saving.register_keras_serializable(package="test_contract")
class Warmup(kp.priors.Prior):
    """A fit schedule: head only for ``epochs`` epochs (backbone frozen), then everything."""

    def __init__(self, epochs=1, name=None):
        super().__init__(weight=0.0, name=name)
        self.epochs = epochs
        self.log = []

    def fit_schedule(self, model, initial_epoch):
        return [kp.priors.FitPhase(0, self._freeze), kp.priors.FitPhase(self.epochs, self._unfreeze)]

    def _freeze(self, model):
        self.log.append(("freeze", int(model.optimizer.iterations)))
        model.backbone.trainable = False
        model.compile(optimizer="adam")

    def _unfreeze(self, model):
        self.log.append(("unfreeze", int(model.optimizer.iterations)))
        model.backbone.trainable = True
        model.compile(optimizer="adam")

    def get_config(self):
        return {"epochs": self.epochs, "name": self.name}


def test_a_fit_schedule_splits_fit_into_phases():
    prior = Warmup(epochs=1)
    model = tiny_zoo_model([prior])
    model.compile(optimizer="adam")
    backbone_before = [np.array(w) for w in model.backbone.get_weights()]
    history = model.fit(_batch(), epochs=3, batch_size=4, verbose=0)
    assert prior.log == [("freeze", 0), ("unfreeze", 1)]  # a fresh optimizer after one frozen epoch
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3
    assert model.backbone.trainable
    assert any(not np.array_equal(a, b) for a, b in zip(backbone_before, model.backbone.get_weights()))
    prior.log.clear()
    model.fit(_batch(), epochs=1, batch_size=4, verbose=0)  # stops inside the first phase: no unfreeze
    assert [phase for phase, _ in prior.log] == ["freeze"]


def test_library_priors_serialize_by_registered_name_and_old_configs_still_load():
    prior = priors.CAMSuppression(classes=[1], weight=0.5)
    config = serialize_prior(prior)
    assert config["registered_name"] == "keras_priors.priors>CAMSuppression"
    assert deserialize_prior(config).get_config() == prior.get_config()
    # a .keras file of 0.1 stored priors as {"class_name", "config"} only
    old = deserialize_prior({"class_name": "CAMSuppression", "config": prior.get_config()})
    assert type(old) is priors.CAMSuppression and old.get_config() == prior.get_config()
    # the loss of the same name keeps its own registration
    assert keras.saving.get_registered_object("keras_priors>CAMSuppression") is kp.losses.CAMSuppression


def test_every_library_prior_declares_its_keys_and_applies_weight_in_the_base_class():
    examples = [priors.Auxiliary(num_classes=3), priors.BackgroundSwap(), priors.CAMSuppression(),
                priors.ConfidencePenalty(), priors.DualInput(), priors.DualInput(box_source="predicted"),
                priors.Energy(), priors.FeatureContraction(), priors.GradCAMPenalty(), priors.InputGradient(),
                priors.LabelSmoothing(), priors.MaskDecoder(), priors.Pretrained("w.weights.h5"),
                priors.SpatialAttention()]
    covered = {type(p).__name__ for p in examples}
    assert covered == set(_library_prior_names()), sorted(set(_library_prior_names()) - covered)
    for prior in examples:
        assert set(prior.data_spec()) == set(prior.required_keys), type(prior).__name__
        assert type(prior).loss_terms is priors.Prior.loss_terms, type(prior).__name__
        assert type(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(prior))) is type(prior)


def _library_prior_names():
    return [n for n in priors.__all__
            if isinstance(getattr(priors, n), type) and issubclass(getattr(priors, n), priors.Prior)
            and getattr(priors, n) is not priors.Prior]


def _code_without_docstrings(path):
    """The file's code and comments: docstrings (prose and examples for users) blanked out."""
    with open(path) as f:
        source = f.read()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                for i in range(first.lineno - 1, first.end_lineno):
                    lines[i] = ""
    text = "\n".join(lines)
    tokenize.generate_tokens(io.StringIO(text).readline)  # still valid Python
    return text


def test_the_zoo_names_no_particular_prior():
    import keras_priors.zoo as zoo_package

    names = _library_prior_names()
    assert len(names) >= 13
    folder = os.path.dirname(zoo_package.__file__)
    found = []
    for file in sorted(os.listdir(folder)):
        if file.endswith(".py"):
            text = _code_without_docstrings(os.path.join(folder, file))
            found += [f"{file}: {n}" for n in names if re.search(rf"\b{n}\b", text)]
            found += [f"{file}: is_pretrained" for _ in re.findall(r"is_pretrained", text)]
    assert found == []
