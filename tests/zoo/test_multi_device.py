"""build + fit on two devices: tf.distribute.MirroredStrategy and keras.distribution.DataParallel.

Each runs in a subprocess, since the device count must be set before the
backend starts.
"""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMMON = """
import json, numpy as np, keras
from keras_priors import zoo, priors
from keras_priors.data.kakapo import make_kakapo
data = make_kakapo(64, image_size=32, seed=1)
def make():
    return zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                     priors=[priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8)])
"""

TF_SCRIPT = COMMON.replace("import json,", """import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import json,""") + """
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = make()
    model.compile(optimizer="adam")
history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(16), epochs=2, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "history": history.history}))
"""

JAX_SCRIPT = COMMON + """
import jax
devices = jax.devices()
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
model = make()
model.compile(optimizer="adam")
history = model.fit(data, batch_size=16, epochs=2, verbose=0)
print(json.dumps({"replicas": len(devices), "history": history.history}))
"""


def _run(script, backend, extra_env=None):
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {})}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check(out):
    assert out["replicas"] == 2
    h = out["history"]
    # The logged total equals the sum of the logged terms (no double counting across replicas).
    for epoch in range(2):
        terms = h["classification_loss"][epoch] + h["cam_suppression_loss"][epoch] + h["mask_decoder_loss"][epoch]
        assert abs(h["loss"][epoch] - terms) < 1e-3 * max(1.0, terms), (h["loss"][epoch], terms)
    assert h["loss"][1] < h["loss"][0]


def test_fit_under_mirrored_strategy_two_cpus():
    _check(_run(TF_SCRIPT, "tensorflow"))


def test_fit_under_jax_data_parallel_two_host_devices():
    _check(_run(JAX_SCRIPT, "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
