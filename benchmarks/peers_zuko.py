"""zuko (PyTorch) flows as benchmark peers: MAF, NSF and RealNVP on the same arrays.

Used only when `import zuko` works (`pip install torch==2.13.0 zuko`); tfflows itself
never depends on torch. Each flow has `num_layers` transforms with conditioner hidden
sizes `hidden_units` (zuko's MLP, ReLU), trains with torch's Adam in eager PyTorch under
`protocol.train_loop` (same batch size, epoch cap and early stopping as the others).
"""

import copy
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402


def available(with_torch=False):
    """(True, zuko's version [and torch's]) if zuko imports, else (False, reason)."""
    try:
        import torch
        import zuko
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip the peer"
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"zuko {zuko.__version__}, torch {torch.__version__}" if with_torch else zuko.__version__


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


def candidate(name):
    """The zuko peer `name`; raises ImportError with the reason when zuko does not import."""
    ok, reason = available()
    if not ok:
        raise ImportError(f"{name} needs zuko and torch ({reason})")
    return candidates()[name]


def device_steps_per_s(kind, features, batch, config, pool=8, compiled=False):
    """bench_gpu.py's zuko row: an eager (or torch.compile'd loss) torch train step over
    `pool` standard-normal batches already on the device (CUDA when available), timed by
    `timing.time_loop`. `config` has layers, hidden, learning_rate, seed, steps, repeats,
    warmup. Returns (steps/s, spread, params, last loss, note)."""
    import torch
    import zuko

    import timing

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    flow = getattr(zuko.flows, kind)(features, transforms=config.layers,
                                     hidden_features=tuple(config.hidden)).to(device)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    batches = list(torch.randn((pool, batch, features), generator=gen, device=device, dtype=torch.float32))

    def loss_fn(x):
        return -flow().log_prob(x).mean()

    rate, spread, loss = timing.torch_steps_per_s(loss_fn, flow.parameters(), batches, device, config,
                                                  compiled)
    return rate, spread, int(sum(p.numel() for p in flow.parameters())), loss, f"device={device.type}"
