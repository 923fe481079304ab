"""Train a flow, save it, export a SavedModel and call it from a process with TensorFlow only.

    python examples/export_and_serve.py        # well under a minute on 2 CPU cores

1. Fits a RealNVP to scikit-learn's breast-cancer features (30-D, standardized).
2. `flow.save("saved_models/breast_cancer_realnvp.keras")`, reloaded with
   `tfflows.load_model` (safe mode): identical log_prob.
3. `flow.export("saved_models/breast_cancer_realnvp/1")` (TF Serving's <model>/<version>).
4. Starts a fresh Python in which `import tfflows`, TFP and Keras are blocked, loads the
   SavedModel with `tf.saved_model.load`, and prints its log_prob, encode/decode round
   trip and seeded samples beside the in-process model's.
5. Prints the `saved_model_cli` and TF Serving commands and a REST body for log_prob.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import tfflows as tff  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")

TF_ONLY = textwrap.dedent("""
    import importlib.machinery, json, sys
    BLOCKED = ("tfflows", "tensorflow_probability", "keras")
    class _Refuse:
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked")
        def exec_module(self, module):
            raise ImportError(f"{module.__name__} is blocked")
    class _Block:  # lets TensorFlow look keras up, refuses to import it
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                if spec is None:
                    raise ImportError(f"{name} is blocked in this process")
                spec.loader = _Refuse()
                return spec
    sys.meta_path.insert(0, _Block())
    try:
        import tfflows
    except ImportError as e:
        print("import tfflows ->", e)
    import numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    x = tf.constant(np.load(sys.argv[2]))
    sig = model.signatures
    z = sig["encode"](x=x)["z"]
    print(json.dumps({
        "signatures": sorted(sig),
        "log_prob": sig["serving_default"](x=x)["log_prob"].numpy().astype(float).round(4).tolist(),
        "decode_error": float(np.abs(sig["decode"](z=z)["x"].numpy() - x.numpy()).max()),
        "sample_seed_7": sig["sample"](num_samples=tf.constant(2), seed=tf.constant(7, tf.int64))["x"].numpy()[:, :3].astype(float).round(4).tolist(),
        "blocked_modules_loaded": [m for m in sys.modules if m.split(".")[0] in BLOCKED],
    }))
""")


def main():
    os.makedirs(OUT, exist_ok=True)
    train, val, test = tff.datasets.breast_cancer()
    flow = tff.RealNVP(train.shape[1], num_layers=4, hidden_units=(64, 64))
    start = time.time()
    flow.fit(train, validation_data=val, epochs=30, batch_size=64, verbose=0)
    print(f"trained in {time.time() - start:.1f} s; test NLL {-flow.log_prob(test).numpy().mean():.3f} nats")

    keras_path = os.path.join(OUT, "breast_cancer_realnvp.keras")
    flow.save(keras_path)
    reloaded = tff.load_model(keras_path)
    same = np.array_equal(reloaded.log_prob(test).numpy(), flow.log_prob(test).numpy())
    print(f"saved {keras_path}; reloaded log_prob identical: {same}")

    export_dir = os.path.join(OUT, "breast_cancer_realnvp", "1")
    start = time.time()
    flow.export(export_dir)
    print(f"exported {export_dir} in {time.time() - start:.1f} s")

    rows = test[:3]
    x_file = os.path.join(OUT, "breast_cancer_rows.npy")
    np.save(x_file, rows)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", TF_ONLY, export_dir, x_file], capture_output=True, text=True,
                            env=env, cwd=OUT)
    if result.returncode:
        sys.exit(result.stderr)
    lines = result.stdout.strip().splitlines()
    print("\n--- fresh process, TensorFlow only ---")
    print(lines[0])
    served = json.loads(lines[-1])
    for key, value in served.items():
        print(f"{key}: {value}")
    print("--- in-process model ---")
    print("log_prob:", flow.log_prob(rows).numpy().astype(float).round(4).tolist())
    print("sample_seed_7:", flow.sample(2, seed=7).numpy()[:, :3].astype(float).round(4).tolist())

    model_dir = os.path.dirname(export_dir)
    body = {"signature_name": "log_prob", "instances": rows[:2].astype(float).round(3).tolist()}
    print(f"""
Inspect:  saved_model_cli show --dir {export_dir} --all
Serve:    docker run --rm -p 8501:8501 --mount type=bind,source={model_dir},target=/models/realnvp \\
              -e MODEL_NAME=realnvp -t tensorflow/serving
Request:  curl -X POST http://localhost:8501/v1/models/realnvp:predict -d '{json.dumps(body)}'""")


if __name__ == "__main__":
    main()
