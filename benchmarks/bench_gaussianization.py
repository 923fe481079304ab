"""Iterative Gaussianization on the benchmark protocol: greedy `RBIG` and
`GaussianizationFlow` (greedy initialization, then `fit` under the protocol's budget).

    python benchmarks/bench_gaussianization.py [--datasets digits breast_cancer]
        [--out benchmarks/results/gaussianization.md]

RBIG is fitted without gradients (`fit_greedy` with the validation split choosing the
depth); its "wall s" is the whole greedy fit. GaussianizationFlow's wall s includes its
greedy initialization. Test NLL is the mean over all test rows, in nats; the table also
counts the test rows whose log-density is not finite.
"""

import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import protocol  # noqa: E402


class RBIGCandidate(protocol.KerasFlowCandidate):
    """Greedy RBIG, logged per block (evaluation methods shared with every tfflows flow)."""

    def __init__(self, **options):
        super().__init__("RBIG (greedy)", build=None)
        self.options = options

    def fit(self, train, val, config):
        import keras

        import tfflows as tff

        keras.utils.set_random_seed(config.seed)
        self.model = tff.RBIG(train.shape[1], seed=config.seed, **self.options)
        start = time.perf_counter()
        self.model.fit_greedy(train, validation_data=val, verbose=0)
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        history = self.model.greedy_history
        log.epoch_steps = [1] * len(history["train_nll"])  # one "epoch" per greedy block
        log.epoch_train_seconds = list(np.diff([0.0] + history["seconds"]))
        log.best_epoch = self.model.num_blocks
        log.note = f"{self.model.num_blocks} blocks kept of {len(history['train_nll'])} fitted; 'epochs' = blocks"
        return log


class GaussianizationFlowCandidate(protocol.KerasFlowCandidate):
    def __init__(self, **options):
        import tfflows as tff

        super().__init__("GaussianizationFlow", lambda d: tff.GaussianizationFlow(d, seed=0, **options))

    def fit(self, train, val, config):
        import keras

        keras.utils.set_random_seed(config.seed)
        self.model = self._build(train.shape[-1])
        start = time.perf_counter()
        self.model.initialize_greedy(train, validation_data=val)
        init_s = time.perf_counter() - start
        self.greedy_val_nll = float(-np.mean(np.asarray(self.model.log_prob(val))))
        log = protocol.train_keras_flow(self.model, train, val, config)
        log.wall_s += init_s
        log.note = (f"greedy init {init_s:.1f}s, val NLL {self.greedy_val_nll:.2f} before fit" +
                    (f"; {log.note}" if log.note else ""))
        return log


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(protocol.DATASETS))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gaussianization.md"))
    parser.add_argument("--epochs", type=int, default=protocol.Config.epochs)
    args = parser.parse_args(argv)
    config = protocol.Config(epochs=args.epochs)
    results = []
    for dataset in args.datasets:
        data = protocol.load(dataset, config.seed)
        for candidate in (RBIGCandidate(), GaussianizationFlowCandidate()):
            result = protocol.evaluate(candidate, dataset, config, data=data)
            protocol.print_result(result)
            results.append(result)
    command = "python benchmarks/bench_gaussianization.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = protocol.markdown_report(results, config, peer="RBIG (greedy)", command=command.strip(),
                                      title="Iterative Gaussianization benchmark")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report + "\n")
    print(f"wrote {args.out}")
    return 0 if all(not r.failed and math.isfinite(r.test_nll) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
