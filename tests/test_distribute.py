"""fit under tf.distribute.MirroredStrategy with two logical CPU devices matches one device.

Logical devices must be configured before TensorFlow starts, so the check runs in a
fresh Python process.
"""

import json
import subprocess
import sys
import textwrap

import keras
import pytest

SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import tfflows as tff

    x = tff.datasets.toy_2d("moons", 512, seed=0)

    def losses(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
            flow.compile(optimizer=keras.optimizers.SGD(0.05))
        history = flow.fit(x, epochs=3, batch_size=128, shuffle=False, verbose=0)
        return history.history["loss"]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "single": losses(tf.distribute.OneDeviceStrategy("/cpu:0")),
        "mirrored": losses(mirrored),
    }))
""")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute is TensorFlow-only")
def test_mirrored_strategy_matches_single_device():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert len(out["mirrored"]) == 3
    for single, mirrored in zip(out["single"], out["mirrored"]):
        assert abs(single - mirrored) < 1e-4 * max(1.0, abs(single))
    assert out["mirrored"][-1] < out["mirrored"][0]
