"""zuko (PyTorch) flows as benchmark peers: MAF, NSF and RealNVP on the same arrays.

Used only when `import zuko` works (`pip install torch==2.13.0 zuko`); tfflows itself
never depends on torch. Each flow has `num_layers` transforms with conditioner hidden
sizes `hidden_units` (zuko's MLP, ReLU), trains with torch's Adam in eager PyTorch under
`protocol.train_loop` (same batch size, epoch cap and early stopping as the others).
"""

import copy

import numpy as np

try:
    from benchmarks import protocol
except ImportError:  # run as a script from benchmarks/
    import protocol


def available():
    """(True, version) if zuko imports, else (False, reason)."""
    try:
        import torch  # noqa: F401
        import zuko
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip the peer"
        return False, f"{type(exc).__name__}: {exc}"
    return True, zuko.__version__


class ZukoCandidate(protocol.Candidate):
    library = "zuko"

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind

    def _build(self, features, config):
        import zuko

        kwargs = dict(transforms=config.num_layers, hidden_features=tuple(config.hidden_units))
        return getattr(zuko.flows, self.kind)(features, **kwargs)

    def fit(self, train, val, config):
        import torch

        torch.manual_seed(config.seed)
        self.flow = flow = self._build(train.shape[-1], config)
        optimizer = torch.optim.Adam(flow.parameters(), lr=config.learning_rate)

        def step(x):
            loss = -flow().log_prob(torch.from_numpy(x)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        def val_nll(x):
            with torch.no_grad():
                return float(-flow().log_prob(torch.from_numpy(x)).mean())

        return protocol.train_loop(
            step=step, val_nll=val_nll,
            get_state=lambda: copy.deepcopy(flow.state_dict()),
            set_state=flow.load_state_dict,
            train=train, val=val, config=config,
        )

    def log_prob(self, x):
        import torch

        with torch.no_grad():
            return self.flow().log_prob(torch.from_numpy(np.asarray(x, dtype="float32"))).numpy()

    def sample(self, n):
        import torch

        with torch.no_grad():
            return self.flow().sample((n,)).numpy()

    def count_params(self):
        return int(sum(p.numel() for p in self.flow.parameters()))


def candidates():
    """name -> Candidate of the zuko peers (empty if zuko is not installed)."""
    ok, _ = available()
    if not ok:
        return {}
    return {f"zuko {kind}": ZukoCandidate(f"zuko {kind}", kind) for kind in ("MAF", "NSF", "RealNVP")}
