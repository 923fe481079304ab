"""SavedModel export: signatures, names, reproduction of the model's outputs in a fresh
process with TensorFlow only (tfflows, TFP and Keras cannot be imported there),
`saved_model_cli run`, every preset, conditional flows, TFP bases."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.test_tfp import PRESETS, make_preset

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel export needs TensorFlow")

import tensorflow as tf  # noqa: E402

D = 4
# Run in the child: refuse to import tfflows, TFP or Keras, then use TensorFlow only.
# (TensorFlow's own __init__ looks keras up with find_spec without importing it, so the
# blocker keeps the lookup working and makes the import itself fail.)
BLOCKER = textwrap.dedent("""
    import importlib.machinery, sys
    BLOCKED = ("tfflows", "tensorflow_probability", "keras")
    class _Refuse:
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked in this process")
        def exec_module(self, module):
            raise ImportError(f"{module.__name__} is blocked in this process")
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                if spec is None:
                    raise ImportError(f"{name} is blocked in this process")
                spec.loader = _Refuse()
                return spec
    sys.meta_path.insert(0, _Block())
    for mod in ("tfflows", "tensorflow_probability", "keras"):
        try:
            __import__(mod)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{mod} should not be importable here")
""")
CHILD = BLOCKER + textwrap.dedent("""
    import json, numpy as np, tensorflow as tf
    path, x_file, out_file = sys.argv[1:4]
    model = tf.saved_model.load(path)
    sig = model.signatures
    x = tf.constant(np.load(x_file))
    z = sig["encode"](x=x)["z"]
    out = {
        "signatures": sorted(sig.keys()),
        "log_prob": sig["log_prob"](x=x)["log_prob"].numpy(),
        "serving_default": sig["serving_default"](x=x)["log_prob"].numpy(),
        "z": z.numpy(),
        "x_back": sig["decode"](z=z)["x"].numpy(),
        "sample_a": sig["sample"](num_samples=tf.constant(5), seed=tf.constant(7, tf.int64))["x"].numpy(),
        "sample_b": sig["sample"](num_samples=tf.constant(5), seed=tf.constant(7, tf.int64))["x"].numpy(),
        "sample_c": sig["sample"](num_samples=tf.constant(5), seed=tf.constant(8, tf.int64))["x"].numpy(),
    }
    np.savez(out_file, **{k: v for k, v in out.items() if k != "signatures"})
    assert not any(m.split(".")[0] in BLOCKED for m in sys.modules), "a blocked package was imported"
    print(json.dumps(out["signatures"]))
""")


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained RealNVP, its export, and test data."""
    rng = np.random.default_rng(0)
    x_train = (rng.normal(size=(256, D)) @ rng.normal(size=(D, D))).astype("float32")
    flow = tff.RealNVP(D, num_layers=2, hidden_units=(16,))
    flow.fit(x_train, epochs=2, batch_size=64, verbose=0)
    path = str(tmp_path_factory.mktemp("export") / "realnvp")
    assert flow.export(path) == path
    return flow, path, x_train[:10]


def test_signatures_and_names(trained):
    flow, path, x = trained
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "log_prob", "encode", "decode", "sample"}

    def io(name):
        fn = loaded.signatures[name]
        return set(fn.structured_input_signature[1]), set(fn.structured_outputs)

    assert io("serving_default") == ({"x"}, {"log_prob"})
    assert io("log_prob") == ({"x"}, {"log_prob"})
    assert io("encode") == ({"x"}, {"z"})
    assert io("decode") == ({"z"}, {"x"})
    assert io("sample") == ({"num_samples", "seed"}, {"x"})
    spec = loaded.signatures["log_prob"].structured_input_signature[1]["x"]
    assert spec.shape.as_list() == [None, D] and spec.dtype == tf.float32


def test_fresh_process_without_tfflows_reproduces_outputs(trained, tmp_path):
    flow, path, x = trained
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run([sys.executable, "-c", CHILD, path, str(tmp_path / "x.npy"), str(tmp_path / "out.npz")],
                            capture_output=True, text=True, env=_env(), cwd=str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(
        ["serving_default", "log_prob", "encode", "decode", "sample"])
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["log_prob"], flow.log_prob(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["serving_default"], out["log_prob"], rtol=0)
    np.testing.assert_allclose(out["z"], flow.encode(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["x_back"], x, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out["sample_a"], out["sample_b"])  # same seed, same samples
    assert not np.allclose(out["sample_a"], out["sample_c"])
    np.testing.assert_allclose(out["sample_a"], flow.sample(5, seed=7).numpy(), rtol=1e-5, atol=1e-5)


def test_saved_model_cli_run(trained, tmp_path):
    flow, path, x = trained
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    np.save(tmp_path / "x.npy", x)
    out_dir = tmp_path / "cli_out"
    result = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "log_prob",
                             "--inputs", f"x={tmp_path / 'x.npy'}", "--outdir", str(out_dir)],
                            capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(out_dir / "log_prob.npy"), flow.log_prob(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(set(PRESETS) - {"RealNVP"}))
def test_every_preset_exports(name, tmp_path):
    flow, x = make_preset(name)
    path = flow.export(str(tmp_path / name))
    loaded = tff.load_saved_model(path)
    sig = loaded.signatures
    x_t = tf.constant(x)
    np.testing.assert_allclose(sig["log_prob"](x=x_t)["log_prob"].numpy(), flow.log_prob(x).numpy(),
                               rtol=1e-4, atol=1e-4)
    z = sig["encode"](x=x_t)["z"]
    np.testing.assert_allclose(z.numpy(), flow.encode(x).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sig["decode"](z=z)["x"].numpy(), flow.decode(z.numpy()).numpy(), rtol=1e-4, atol=1e-4)
    samples = sig["sample"](num_samples=tf.constant(3), seed=tf.constant(1, tf.int64))["x"].numpy()
    np.testing.assert_allclose(samples, flow.sample(3, seed=1).numpy(), rtol=1e-4, atol=1e-4)


def test_conditional_flow_export(tmp_path):
    rng = np.random.default_rng(0)
    flow = tff.RealNVP(D, num_layers=2, hidden_units=(8,), context_features=2)
    x = rng.normal(size=(6, D)).astype("float32")
    c = rng.normal(size=(6, 2)).astype("float32")
    flow.log_prob(x, c)
    from tests.helpers import randomize_weights

    randomize_weights(flow, rng, scale=0.1)
    sig = tf.saved_model.load(flow.export(str(tmp_path / "cond"))).signatures
    assert set(sig["log_prob"].structured_input_signature[1]) == {"x", "context"}
    assert set(sig["sample"].structured_input_signature[1]) == {"context", "seed"}
    np.testing.assert_allclose(sig["log_prob"](x=tf.constant(x), context=tf.constant(c))["log_prob"].numpy(),
                               flow.log_prob(x, c).numpy(), rtol=1e-5, atol=1e-5)
    z = sig["encode"](x=tf.constant(x), context=tf.constant(c))["z"]
    np.testing.assert_allclose(sig["decode"](z=z, context=tf.constant(c))["x"].numpy(), x, atol=1e-4)
    s = sig["sample"](context=tf.constant(c), seed=tf.constant(3, tf.int64))["x"].numpy()
    np.testing.assert_allclose(s, flow.sample(6, seed=3, context=c).numpy(), rtol=1e-5, atol=1e-5)


def test_tfp_base_exports(tmp_path):
    from tfflows.interop.tfp import tfd

    base = tff.TFPDistribution(tfd.Independent(tfd.StudentT(df=3.0, loc=tf.Variable(tf.zeros(D)),
                                                             scale=tf.ones(D)), 1))
    flow = tff.Flow(tff.Chain([tff.AffineCoupling(hidden_units=(8,))]), base=base, event_shape=(D,))
    x = np.random.default_rng(1).normal(size=(5, D)).astype("float32")
    base.trainable_weights[0].assign(np.full(D, 0.5, "float32"))  # exported weights are the current ones
    sig = tf.saved_model.load(flow.export(str(tmp_path / "studentt"))).signatures
    np.testing.assert_allclose(sig["log_prob"](x=tf.constant(x))["log_prob"].numpy(), flow.log_prob(x).numpy(),
                               rtol=1e-5)
    s = sig["sample"](num_samples=tf.constant(4), seed=tf.constant(2, tf.int64))["x"].numpy()
    np.testing.assert_allclose(s, flow.sample(4, seed=2).numpy(), rtol=1e-5, atol=1e-6)


def test_export_needs_event_shape(tmp_path):
    flow = tff.Flow(tff.Chain([tff.AffineCoupling()]))
    with pytest.raises(ValueError, match="event_shape"):
        flow.export(str(tmp_path / "unbuilt"))
