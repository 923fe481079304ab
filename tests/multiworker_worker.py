"""One process of the multi-worker check in `tests/test_multiworker.py` (run by path).

    python tests/multiworker_worker.py CONFIG.json

With "multi": true the process is one worker of a `tf.distribute.MultiWorkerMirroredStrategy`
cluster described by TF_CONFIG (task 0 is the chief); otherwise it trains the same flow
on the same data in a single process, without a strategy. Either way it writes a JSON
report to config["out"] (".<task>" appended for workers): per-epoch losses, the final
weights and, for the chief of a run with "checkpoint", how far the `.keras` checkpoint's
weights are from the final ones. "interrupt_at": raise at the start of that epoch (a
worker failure; the report says "interrupted"), to be resumed by `BackupAndRestore`.
Exit status 77: the cluster's first collective did not complete (no usable loopback).
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfflows as tff  # noqa: E402

UNAVAILABLE = 77


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"interrupted at epoch {epoch}")


class Record(keras.callbacks.Callback):
    """Per-epoch logs, kept when fit is interrupted."""

    def __init__(self):
        super().__init__()
        self.epochs, self.loss, self.val_loss = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.loss.append(float(logs["loss"]))
        if "val_loss" in logs:
            self.val_loss.append(float(logs["val_loss"]))


def start_cluster():
    """The strategy, after one all-reduce across the workers (within a timeout)."""
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=60)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        total = strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
        assert float(total) == strategy.num_replicas_in_sync
    except Exception as error:  # noqa: BLE001 - any failure here is the environment's
        print(f"collective unavailable: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(UNAVAILABLE)
    return strategy


def greedy_report(strategy, task):
    """The streamed greedy RBIG fit: every worker streams its half of the rows and the
    sketches are all-reduced (`strategy`), the single process streams all of them."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4000, 3))
    rows = np.c_[z[:, 0], z[:, 0] ** 2 + 0.5 * z[:, 1], np.exp(0.5 * z[:, 2])].astype("float32")
    mine = rows[task::2] if strategy is not None else rows
    batches = [mine[i:i + 500] for i in range(0, len(mine), 500)]
    flow = tff.RBIG(3, rotation="pca").fit_greedy(batches, max_blocks=3, patience=3, tol=-1.0, verbose=0,
                                                 strategy=strategy)  # PCA: exact all-reduced moments
    return {"rbig_log_prob": np.asarray(flow.log_prob(rows[:200]), dtype="float64").tolist(),
            "rbig_blocks": flow.num_blocks}


def main(config_path):
    with open(config_path) as f:
        config = json.load(f)
    task, chief, strategy = 0, True, tf.distribute.get_strategy()
    if config["multi"]:
        strategy = start_cluster()
        task = strategy.cluster_resolver.task_id
        chief = task == 0
    keras.utils.set_random_seed(0)  # the same initial weights and shuffling seed in every process
    # 257 rows in batches of 64: the last global batch has 1 row, so one worker gets none
    x = tff.datasets.toy_2d("moons", config.get("rows", 257), seed=0).astype("float32")
    with strategy.scope():
        flow = tff.MAF(2, num_layers=2, hidden_units=(8,), normalization="actnorm")  # ActNorm: data-dependent init
        flow.compile(optimizer=keras.optimizers.Adam(0.01))
    record = Record()
    callbacks = [record]
    # Keras's callbacks know nothing of the cluster: every worker writes, the chief to the
    # real paths, the others to their own (the backup must outlive a restart).
    if config.get("backup_dir"):
        backup = config["backup_dir"] if chief else f"{config['backup_dir']}-worker{task}"
        callbacks.append(keras.callbacks.BackupAndRestore(backup))
    checkpoint = config.get("checkpoint")
    if checkpoint:
        path = checkpoint if chief else os.path.join(tempfile.mkdtemp(), os.path.basename(checkpoint))
        callbacks.append(keras.callbacks.ModelCheckpoint(path))
    if config.get("interrupt_at") is not None:
        callbacks.append(Interrupt(config["interrupt_at"]))
    validation = x[:100] if config.get("validation") else None
    interrupted = False
    try:
        flow.fit(x, batch_size=64, epochs=config.get("epochs", 4), validation_data=validation, callbacks=callbacks,
                 verbose=0)
    except RuntimeError as error:
        if "interrupted at epoch" not in str(error):
            raise
        interrupted = True
    report = {"task": task, "replicas": strategy.num_replicas_in_sync, "interrupted": interrupted,
              "epochs": record.epochs, "loss": record.loss, "val_loss": record.val_loss,
              "weights": [np.asarray(w, dtype="float64").ravel().tolist() for w in flow.get_weights()]}
    if checkpoint and chief and not interrupted:
        saved = tff.load_model(checkpoint)
        report["checkpoint_weights_diff"] = max(float(np.max(np.abs(a - b)))
                                                for a, b in zip(saved.get_weights(), flow.get_weights()))
        report["checkpoint_log_prob_diff"] = float(np.max(np.abs(np.asarray(saved.log_prob(x))
                                                                 - np.asarray(flow.log_prob(x)))))
    if config.get("rbig"):
        report.update(greedy_report(strategy if config["multi"] else None, task))
    out = config["out"] + (f".{task}" if config["multi"] else "")
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1])
