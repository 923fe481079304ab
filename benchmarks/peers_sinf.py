"""The authors' Gaussianizing Iterative Slicing (GIS; Dai & Seljak 2021, "Sliced Iterative
Normalizing Flows", arXiv:2007.00674) as a benchmark-only peer: their own code, the SINF
repository at commit 450ee7b, run as it is. Nothing of it is copied into tfflows.

Get it once (not installed by pip; the folder is ignored by git):

    git clone https://github.com/biweidai/SINF benchmarks/.peers/SINF
    git -C benchmarks/.peers/SINF checkout 450ee7b

or point SINF_PATH at such a checkout. It needs torch (benchmarks/requirements.txt).

Compatibility shims, nothing else changed: torch 2 deprecates `torch.qr` (2.13 still has
it), which SINF calls for its slice axes; where it is gone it is restored here as `torch.linalg.qr` (reduced mode, what
`torch.qr` returned by default) before SINF is imported. And where torchvision cannot be
imported, an empty stand-in module takes its place (`_stand_in_for_torchvision`: GIS does
not use it). GIS runs on the CPU (`nocuda=True`), in float32 (its own dtype), at its defaults,
with the validation rows for its stopping rule (stop after 5 iterations without a better
validation log-likelihood, keep the best depth).
"""

import os
import sys
import time

import numpy as np

try:
    from benchmarks import protocol
except ImportError:  # run as a script from benchmarks/
    import protocol

COMMIT = "450ee7b"
DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".peers", "SINF")


def _import_gis():
    """SINF's `GIS` function and `torch`, after the `torch.qr` shim."""
    path = os.environ.get("SINF_PATH", DEFAULT_PATH)
    if not os.path.isfile(os.path.join(path, "sinf", "GIS.py")):
        raise ImportError(
            f"the SINF repository (commit {COMMIT}) is not at {path}: see "
            "benchmarks/peers_sinf.py for the two commands that fetch it"
        )
    import torch

    if not hasattr(torch, "qr"):  # deprecated in torch 2 (still there in 2.13), then removed
        torch.qr = lambda a, some=True: torch.linalg.qr(a, mode="reduced" if some else "complete")
    _stand_in_for_torchvision()
    if path not in sys.path:
        sys.path.insert(0, path)
    from sinf.GIS import GIS

    return GIS, torch


def _stand_in_for_torchvision():
    """SINF's `load_data` module, which GIS.py star-imports, imports torchvision for its
    image data loaders; GIS never calls them. Where torchvision is missing (or cannot
    load its extension, as with a build for another torch), an empty stand-in lets the
    import pass; any use of it would fail loudly."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        import types

        stand_in = types.ModuleType("torchvision")
        stand_in.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"] = stand_in
        sys.modules["torchvision.transforms"] = stand_in.transforms


class AuthorsGIS(protocol.Candidate):
    library = f"SINF {COMMIT}"
    name = "GIS (authors)"

    def __init__(self, name="GIS (authors)", **options):
        self.name, self.options = name, options

    def fit(self, train, val, config):
        gis, torch = _import_gis()
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.torch = torch
        start = time.perf_counter()
        self.model = gis(torch.tensor(train, dtype=torch.float32),
                         torch.tensor(val, dtype=torch.float32), nocuda=True, verbose=False,
                         **self.options)
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        log.greedy_blocks = len(self.model.layer)
        log.note = f"{len(self.model.layer)} iterations"
        return log

    def log_prob(self, x):
        with self.torch.no_grad():
            data = self.torch.tensor(np.asarray(x), dtype=self.torch.float32)
            return self.model.evaluate_density(data).numpy()

    def sample(self, n):
        with self.torch.no_grad():
            return self.model.sample(n, device=self.torch.device("cpu"))[0].numpy()
