"""fit under tf.distribute.MultiWorkerMirroredStrategy, two worker processes on localhost,
matches a single-process run on the same global batches; ModelCheckpoint (written by the
chief) and BackupAndRestore (a cluster interrupted, then restarted) work.

Each process is `tests/multiworker_worker.py` (CPU only), bounded by a timeout and
killed on failure. The test skips only when the cluster's first collective cannot run
(no usable loopback).
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute is TensorFlow-only")

WORKER = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")
TIMEOUT = 180  # seconds, per process
UNAVAILABLE = 77  # the worker's exit status when the first collective fails
EPOCHS = 4


def _free_ports(n):
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    except OSError as error:
        pytest.skip(f"cannot bind a port on 127.0.0.1 for the cluster: {error}")
    finally:
        for s in sockets:
            s.close()


def _environment(tf_config=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _start(config, path, env):
    with open(path, "w") as f:
        json.dump(config, f)
    return subprocess.Popen([sys.executable, WORKER, path], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(processes):
    """Waits for every process (each within TIMEOUT); kills the rest on a failure."""
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    if any(p.returncode == UNAVAILABLE for p in processes):
        pytest.skip("the multi-worker collective cannot start on this machine: "
                    + " | ".join(o.strip().splitlines()[-1] for o in outputs if o.strip()))
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]


def _cluster(tmp_path, name, **config):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    out = str(tmp_path / name)
    processes = [_start({**config, "multi": True, "out": out}, str(tmp_path / f"{name}.{i}.json"),
                        _environment({"cluster": cluster, "task": {"type": "worker", "index": i}}))
                 for i in range(2)]
    return processes, out


def _reports(out, workers=2):
    reports = []
    for i in range(workers):
        with open(f"{out}.{i}") as f:
            reports.append(json.load(f))
    return reports


def _max_weight_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.subtract(u, v)))) for u, v in zip(a, b))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """At once: the single-process reference, a two-worker run with validation data and a
    two-worker run with checkpoints interrupted at epoch 2; then that run's restart."""
    tmp_path = tmp_path_factory.mktemp("multiworker")
    single_out = str(tmp_path / "single")
    single = _start({"multi": False, "out": single_out, "validation": True, "epochs": EPOCHS, "rbig": True},
                    str(tmp_path / "single.json"), _environment())
    plain, plain_out = _cluster(tmp_path, "plain", validation=True, epochs=EPOCHS, rbig=True)
    saving = {"epochs": EPOCHS, "backup_dir": str(tmp_path / "backup"), "checkpoint": str(tmp_path / "flow.keras")}
    first, first_out = _cluster(tmp_path, "first", interrupt_at=2, **saving)
    _finish(plain + first + [single])
    resumed, resumed_out = _cluster(tmp_path, "resumed", **saving)
    _finish(resumed)
    with open(single_out) as f:
        return {"single": json.load(f), "plain": _reports(plain_out), "first": _reports(first_out),
                "resumed": _reports(resumed_out)}


def test_two_workers_match_a_single_process(runs):
    """Shuffled, with ActNorm's data-dependent initialization, validation data, and a
    last global batch of one row (one worker's slice is empty)."""
    single, workers = runs["single"], runs["plain"]
    assert [w["replicas"] for w in workers] == [2, 2]
    assert len(single["loss"]) == EPOCHS
    for worker in workers:
        np.testing.assert_allclose(worker["loss"], single["loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(worker["val_loss"], single["val_loss"], rtol=1e-5, atol=1e-6)
        assert _max_weight_difference(worker["weights"], single["weights"]) < 1e-5
    assert workers[0]["weights"] == workers[1]["weights"]  # in sync: the same values, bit for bit
    assert single["loss"][-1] < single["loss"][0]


def test_backup_and_restore_resumes_a_restarted_cluster(runs):
    single, first, resumed = runs["single"], runs["first"], runs["resumed"]
    for before, after in zip(first, resumed):
        assert before["interrupted"] and before["epochs"] == [0, 1]
        assert not after["interrupted"] and after["epochs"] == list(range(2, EPOCHS))  # restored at epoch 2
        np.testing.assert_allclose(before["loss"] + after["loss"], single["loss"], rtol=1e-5, atol=1e-6)
        assert _max_weight_difference(after["weights"], single["weights"]) < 1e-5


def test_model_checkpoint_written_by_the_chief(runs):
    chief = runs["resumed"][0]
    assert chief["checkpoint_weights_diff"] == 0.0  # the last epoch's checkpoint: the final weights
    assert chief["checkpoint_log_prob_diff"] < 1e-5
    assert "checkpoint_weights_diff" not in runs["resumed"][1]


def test_streamed_greedy_rbig_statistics_are_all_reduced_across_workers(runs):
    """Each worker streams half of the rows; with the sketches all-reduced both fit the
    model of all the rows, the one a single process fits streaming all of them."""
    single, workers = runs["single"], runs["plain"]
    for worker in workers:
        assert worker["rbig_blocks"] == single["rbig_blocks"] == 3
        np.testing.assert_allclose(worker["rbig_log_prob"], single["rbig_log_prob"], rtol=1e-4, atol=1e-4)
    assert workers[0]["rbig_log_prob"] == workers[1]["rbig_log_prob"]
