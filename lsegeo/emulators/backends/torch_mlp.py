"""The ``torch_mlp`` backend of the large-sample emulator: a small multilayer perceptron.

Inputs and targets are standardised with the training rows' mean and standard deviation; the
network (``hidden`` fully connected layers with SiLU activations, one output per target) is
trained with Adam on mini-batches of the mean squared error, and stops early when the loss on a
held-out share of the rows (``validation_fraction``, drawn with the seed) has not improved by
``min_delta`` for ``patience`` epochs; the weights of the best epoch are kept. Everything is
seeded and runs on the CPU with ``torch.set_num_threads(n_jobs)``.

torch is imported only when this backend is used, so lsegeo works without it. The model is saved
as its ``state_dict`` (``torch.save``, read back with ``weights_only=True``) and the
standardisation as an ``.npz``. :meth:`TorchMLPBackend.differentiable` hands out the fitted
model, standardisation included, as a frozen torch function through which gradients flow to the
inputs (the amortised regionalization trains a network through it).

This is lsegeo's own alternative to the tree backends, not a model of Tang, Wood & Swenson
(2025); Adam is Kingma & Ba (2015), SiLU is Elfwing et al. (2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lsegeo.emulators.archive import load_npz, save_npz
from lsegeo.errors import MissingDependencyError

__all__ = ["TorchMLPBackend"]


def import_torch(what: str = "the torch_mlp backend"):
    """PyTorch, or :class:`~lsegeo.errors.MissingDependencyError` naming ``what`` needs it and the extra."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(f"{what} needs PyTorch: pip install 'lsegeo[torch]'") from err
    return torch


def mlp(n_in: int, n_out: int, hidden: Sequence[int], last_scale: float | None = None):
    """An MLP ``n_in -> hidden... -> n_out`` with SiLU activations (linear output).

    ``last_scale``: multiply the output layer's initial weights by it and zero its bias (a
    network whose outputs start near 0).
    """
    torch = import_torch()
    layers: list[Any] = []
    width = n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), torch.nn.SiLU()]
        width = int(h)
    last = torch.nn.Linear(width, n_out)
    if last_scale is not None:
        with torch.no_grad():
            last.weight.mul_(last_scale)
            last.bias.zero_()
    layers.append(last)
    return torch.nn.Sequential(*layers)




def _frozen(net: Any, scaling: dict[str, np.ndarray]):
    """``x -> net((x - x_mean) / x_std) * y_std + y_mean`` as a module with constant buffers."""
    torch = import_torch()

    class _Standardised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            for key in ("x_mean", "x_std", "y_mean", "y_std"):
                self.register_buffer(key, torch.as_tensor(np.asarray(scaling[key], dtype=np.float32)))

        def forward(self, x):
            return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean

    return _Standardised().eval()


class TorchMLPBackend:
    """A standardised-input MLP (PyTorch, CPU) with early stopping.

    Parameters
    ----------
    seed : int
        Seeds torch and the validation split.
    n_jobs : int
        ``torch.set_num_threads`` while fitting and predicting.
    **options
        Override :attr:`DEFAULTS`: ``hidden`` (layer widths), ``lr``, ``weight_decay``,
        ``batch_size``, ``max_epochs``, ``patience``, ``min_delta``, ``validation_fraction``.
    """

    name = "torch_mlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {"hidden": [256, 256], "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 512,
                                "max_epochs": 200, "patience": 12, "min_delta": 1e-4, "validation_fraction": 0.1}

    def __init__(self, seed: int = 0, n_jobs: int = 1, **options: Any) -> None:
        unknown = set(options) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown torch_mlp option(s) {sorted(unknown)}; known: {', '.join(self.DEFAULTS)}")
        self.seed = int(seed)
        self.n_jobs = max(1, int(n_jobs))
        self.options = {**self.DEFAULTS, **options}
        self.options["hidden"] = [int(h) for h in self.options["hidden"]]
        self.net = None
        self.scaling: dict[str, np.ndarray] = {}
        self.history: dict[str, Any] = {}

    def fit(self, X: np.ndarray, Y: np.ndarray) -> TorchMLPBackend:
        """Train on features ``X`` and targets ``Y`` (one column per target)."""
        torch = import_torch()
        o = self.options
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        x_mean, x_std = X.mean(0), X.std(0)
        y_mean, y_std = Y.mean(0), Y.std(0)
        x_std[x_std == 0] = 1.0
        y_std[y_std == 0] = 1.0
        self.scaling = {"x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std}
        xs = torch.from_numpy(((X - x_mean) / x_std).astype(np.float32))
        ys = torch.from_numpy(((Y - y_mean) / y_std).astype(np.float32))
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(X))
        n_val = round(o["validation_fraction"] * len(X)) if len(X) >= 10 else 0
        val, train = perm[:n_val], perm[n_val:]
        threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            torch.manual_seed(self.seed)
            net = mlp(X.shape[1], Y.shape[1], o["hidden"])
            opt = torch.optim.Adam(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
            gen = torch.Generator().manual_seed(self.seed)
            x_tr, y_tr = xs[train], ys[train]
            x_va, y_va = (xs[val], ys[val]) if n_val else (x_tr, y_tr)
            best, best_state, since, epoch = np.inf, None, 0, 0
            for epoch in range(1, int(o["max_epochs"]) + 1):  # noqa: B007 (read after the loop: history)
                net.train()
                order = torch.randperm(len(train), generator=gen)
                for i in range(0, len(train), int(o["batch_size"])):
                    idx = order[i:i + int(o["batch_size"])]
                    opt.zero_grad()
                    loss = torch.nn.functional.mse_loss(net(x_tr[idx]), y_tr[idx])
                    loss.backward()
                    opt.step()
                net.eval()
                with torch.no_grad():
                    v = float(torch.nn.functional.mse_loss(net(x_va), y_va))
                if v < best - o["min_delta"]:
                    best, since = v, 0
                    best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
                else:
                    since += 1
                    if since >= int(o["patience"]):
                        break
            if best_state is not None:
                net.load_state_dict(best_state)
        finally:
            torch.set_num_threads(threads)
        self.net = net.eval()
        self.history = {"epochs": epoch, "best_validation_mse_standardised": best}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_targets)`` float64 predictions."""
        if self.net is None:
            raise RuntimeError("the backend is not fitted")
        torch = import_torch()
        s = self.scaling
        xs = torch.from_numpy(((np.asarray(X, dtype=np.float64) - s["x_mean"]) / s["x_std"]).astype(np.float32))
        threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            with torch.no_grad():
                out = self.net(xs).numpy().astype(np.float64)
        finally:
            torch.set_num_threads(threads)
        return out * s["y_std"] + s["y_mean"]

    def save(self, directory: Path) -> None:
        """``torch_mlp_state.pt`` (state_dict) and ``torch_mlp_scaling.npz``."""
        torch = import_torch()
        torch.save(self.net.state_dict(), Path(directory) / "torch_mlp_state.pt")
        save_npz(Path(directory) / "torch_mlp_scaling.npz", **self.scaling)

    def load(self, directory: Path, n_targets: int) -> None:
        """Rebuild the network and read its weights (``weights_only=True``)."""
        torch = import_torch()
        self.scaling = load_npz(Path(directory) / "torch_mlp_scaling.npz")
        state = torch.load(Path(directory) / "torch_mlp_state.pt", weights_only=True, map_location="cpu")
        net = mlp(len(self.scaling["x_mean"]), n_targets, self.options["hidden"])
        net.load_state_dict(state)
        self.net = net.eval()

    def differentiable(self):
        """The fitted model as a frozen, differentiable torch function of the raw features.

        The returned :class:`torch.nn.Module` computes
        ``y = net((x - x_mean) / x_std) * y_std + y_mean``, the same mapping as :meth:`predict`
        (standardisation included), on a float32 tensor ``x`` of shape ``(n, n_features)`` and
        returns ``(n, n_targets)``. It holds a copy of the weights with ``requires_grad=False``
        and is in evaluation mode, so gradients flow to ``x`` only (e.g. to parameters that
        another network proposes) and the backend itself is left unchanged.

        Returns
        -------
        torch.nn.Module

        Raises
        ------
        RuntimeError
            The backend is not fitted.
        """
        if self.net is None:
            raise RuntimeError("the backend is not fitted")
        import copy

        net = copy.deepcopy(self.net).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return _frozen(net, self.scaling)

    def set_threads(self, n_jobs: int) -> None:
        """Threads used by :meth:`predict`."""
        self.n_jobs = max(1, int(n_jobs))

    def config(self) -> dict[str, Any]:
        """Options that rebuild this backend (JSON)."""
        return dict(self.options)
