"""Cross-backend parity: one zoo model with fixed weights gives TensorFlow's numbers on every backend.

The stored numbers were computed with KERAS_BACKEND=tensorflow (keras 3.15.1, TensorFlow 2.21.0, CPU); the parity run
checks JAX and torch against them, within 1e-4: the logits, the CAM, Grad-CAM maps and the loss terms
of ``evaluate`` with the gradient priors (double backprop on torch and JAX, nested tapes on TF).
"""

import numpy as np
import pytest
from harness import kakapo_batch, tiny_zoo_model, to_numpy

from keras_priors import priors, zoo
from keras_priors.explain import GradCAM

# model.evaluate on kakapo_batch(4, seed=5), TensorFlow (accuracy 0.5).
TF_LOGS = {"cam_energy_in_mask": 0.10356287658214569,
           "cam_suppression_loss": 0.8838973045349121,
           "classification_loss": 0.7102208137512207,
           "energy_gc_loss": 0.93497234582901,
           "grad_cam_penalty_loss": 0.001232381328009069,
           "input_gradient_loss": 0.0009598774486221373,
           "loss": 2.531282663345337}
# model({"image": ...})["logits"], TensorFlow.
TF_LOGITS = [[0.11017200350761414, -0.29693999886512756], [0.1512559950351715, -0.31473401188850403],
             [0.14614099264144897, -0.3389270007610321], [0.14453299343585968, -0.3117179870605469]]
# The class-1 CAM's spatial mean per image, TensorFlow.
TF_CAM_MEAN = [-0.25759100914001465, -0.2753860056400299, -0.2995780110359192, -0.27236899733543396]
# GradCAM(logits_classifier(model))(images, targets=labels)[:, ::8, ::8], TensorFlow.
TF_GRAD_CAM = [[[0.3730570077896118, 0.16321299970149994, 0.0, 0.0],
                [0.22381900250911713, 0.09792099893093109, 0.0, 0.0],
                [0.04713800176978111, 0.02062300033867359, 0.0, 0.0],
                [0.0, 0.3375000059604645, 0.26249998807907104, 0.0]],
               [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
                [0.02071000076830387, 0.3457840085029602, 0.261896014213562, 0.0]],
               [[0.11099100112915039, 0.3708620071411133, 0.3570150136947632, 0.220893993973732],
                [0.10189899802207947, 0.4629110097885132, 0.6988750100135803, 0.5151060223579407],
                [0.049706000834703445, 0.45545700192451477, 0.7950080037117004, 0.48151901364326477],
                [0.10087600350379944, 0.2240860015153885, 0.48826199769973755, 0.3010439872741699]],
               [[0.1877010017633438, 0.39526399970054626, 0.5088949799537659, 0.3857460021972656],
                [0.1916169971227646, 0.45983201265335083, 0.7388730049133301, 0.5554490089416504],
                [0.10603000223636627, 0.45200300216674805, 0.7636100053787231, 0.5069389939308167],
                [0.016227999702095985, 0.2758539915084839, 0.5707719922065735, 0.3521850109100342]]]


def fixed_model():
    model = tiny_zoo_model([priors.InputGradient(weight=1.0), priors.GradCAMPenalty(weight=1.0, level="P2"),
                            priors.Energy(attribution="grad_cam", level="P2", weight=1.0, name="energy_gc"),
                            priors.CAMSuppression(classes=[0])])
    rng = np.random.default_rng(0)
    values = []
    for v in model.weights:  # the same order and shapes on every backend
        shape = tuple(v.shape)
        if "moving_variance" in v.path:
            values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif "gamma" in v.path:
            values.append(rng.uniform(0.8, 1.2, shape).astype("float32"))
        else:
            values.append((rng.normal(size=shape) * 0.1).astype("float32"))
    model.set_weights(values)
    return model


@pytest.mark.parity
def test_same_weights_give_tensorflow_numbers_on_this_backend():
    model = fixed_model()
    batch = kakapo_batch(4, seed=5)
    model.compile(optimizer="adam")
    logs = model.evaluate(batch, batch_size=4, verbose=0, return_dict=True)
    assert logs["accuracy"] == 0.5
    for key, want in TF_LOGS.items():
        np.testing.assert_allclose(logs[key], want, rtol=1e-4, atol=1e-7, err_msg=key)
    out = model({"image": batch["image"]})
    np.testing.assert_allclose(to_numpy(out["logits"]), TF_LOGITS, atol=1e-4)
    np.testing.assert_allclose(to_numpy(out["cam"])[..., 1].mean(axis=(1, 2)), TF_CAM_MEAN, atol=1e-4)
    maps = GradCAM(zoo.logits_classifier(model))(batch["image"], targets=batch["label"])
    np.testing.assert_allclose(maps[:, ::8, ::8], TF_GRAD_CAM, atol=1e-4)
