r"""Amortised regionalization (``lse-amortised``): one network from attributes to parameters.

``lse-optimise`` runs a GA on the large-sample emulator (LSE) for every target. Here a small
network :math:`u = g_\theta(a)` maps a target's encoded attributes :math:`a` to parameters in the
unit cube, trained once by back-propagating through *frozen* differentiable emulators (LSEs with
the ``torch_mlp`` backend, :meth:`~lsegeo.emulators.backends.torch_mlp.TorchMLPBackend.differentiable`);
a prediction is then one forward pass. This is amortised optimisation (Amos 2023, *Tutorial on
amortized optimization*, Found. Trends Mach. Learn. 16) applied to the regionalization of Tang,
Wood & Swenson (2025).

**Loss.** For emulator members :math:`f_1 \dots f_M` (LSEs fitted with different seeds), the
chosen target and :math:`s = +1` to maximise it (:math:`-1` to minimise),
:math:`y_m = s\,f_m([g_\theta(a), a])` and

.. math::

    L(a) = -\operatorname{mean}_m y_m + \lambda\,\operatorname{std}_m y_m + \kappa\,\operatorname{mean}_j z_j^2,

with :math:`z` the output logits (:math:`u = \sigma(z)`), :math:`\lambda` = ``penalty`` and
:math:`\kappa` = ``l2``. The spread term (a lower confidence bound) keeps the network where the
members agree, so that it does not exploit emulator error; with one member it is zero. The L2
term keeps :math:`u` off the faces of the cube, where the sigmoid's gradient vanishes.

**Augmentation.** The loss needs no label, so any attribute row can be trained on. Each epoch
adds ``augment`` times as many synthetic rows as there are training basins: a basin :math:`i`,
one of its ``neighbours`` nearest training basins :math:`j` (standardized attributes) and
:math:`t \sim U(0, 1)` give :math:`a_i + t (a_j - a_i)` (mixup, Zhang et al. 2018, restricted to
neighbours so the rows stay in the cloud the emulators learnt from), plus Gaussian jitter of
standard deviation ``jitter`` (standardized units) on continuous columns; binary columns
(one-hot classes, missing indicators) take the nearer basin's value, so every row is a valid
encoding. Unseen targets lie between training basins, and the loss at a synthetic row is exact
(the emulators' objective), not an interpolated label.

**Warm start, early stopping.** Gradient descent can stop in a local optimum that a GA would
escape, so first ``warm_start`` points of a scrambled Sobol' sequence (Sobol' 1967;
:class:`torch.quasirandom.SobolEngine`) are scored for every training basin and the network is
fitted (mean squared error) to each basin's best point for ``warm_epochs`` full-batch steps. A
share ``validation_fraction`` of the basins (drawn with the seed) is never trained on; training
stops when their loss has not improved by ``min_delta`` for ``patience`` epochs, and the best
epoch's weights are kept.

**Network.** Standardized inputs, ``hidden`` layers with SiLU (Elfwing et al. 2018), a last
linear layer with small initial weights and zero bias (training starts at the cube's centre), the
logistic function; Adam (Kingma & Ba 2015). Fixed parameters (``fixed_mask``) are set to
``fixed_values`` after the sigmoid. :meth:`AmortisedRegionalizer.save` writes
``amortised.json`` (settings, names, target, history), ``amortised_state.pt`` (``state_dict``,
read with ``weights_only=True``) and ``amortised_scaling.npz``; nothing is pickled, and the
emulators are not saved with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.emulators.backends.torch_mlp import import_torch, mlp
from lsegeo.errors import ConfigError, InputFormatError

__all__ = ["AmortisedRegionalizer", "ensemble_scores"]

logger = logging.getLogger(__name__)

FORMAT = "lsegeo-amortised"
FORMAT_VERSION = 1
_META, _STATE, _SCALING = "amortised.json", "amortised_state.pt", "amortised_scaling.npz"
_CHUNK = 65_536  # rows per forward pass in predict and in the warm start


def _torch():
    return import_torch("lse-amortised")


def _network(n_in: int, n_out: int, hidden: Sequence[int]):
    """MLP ``n_in -> hidden... -> n_out`` (logits); the last layer starts small so that u starts near 0.5."""
    return mlp(n_in, n_out, hidden, last_scale=0.1)


def _as_list(emulators: Any) -> list[Any]:
    return list(emulators) if isinstance(emulators, (list, tuple)) else [emulators]


def _frozen_function(em: Any):
    """The emulator's differentiable torch function of features ``[u, a]``."""
    model = getattr(em, "model", None)
    fn = getattr(model, "differentiable", None) or getattr(em, "differentiable", None)
    if fn is None:
        backend = getattr(em, "backend", type(em).__name__)
        raise ConfigError(f"lse-amortised needs differentiable emulators (LargeSampleEmulator with backend "
                          f"'torch_mlp'); got {backend!r}")
    return fn()


def _target_of(em: Any, target: str | None) -> tuple[int, str, str]:
    names = list(em.target_names)
    name = names[0] if target is None else str(target)
    if name not in names:
        raise ConfigError(f"the emulator has no target {name!r}; it has {names}")
    j = names.index(name)
    senses = list(getattr(em, "target_senses", []) or [])
    sense = senses[j] if j < len(senses) else "max"
    if sense not in ("max", "min"):
        raise ConfigError(f"target {name!r} has sense {sense!r}; expected 'max' or 'min'")
    return j, name, sense


def _check_members(members: list[Any]) -> None:
    """Every member must have the same parameters, attributes and targets."""
    first = members[0]
    for k, em in enumerate(members[1:], start=1):
        for what in ("param_names", "attribute_names", "target_names"):
            if list(getattr(em, what)) != list(getattr(first, what)):
                raise ConfigError(f"emulator {k} of the ensemble has other {what} than emulator 0: "
                                  f"{list(getattr(em, what))} vs {list(getattr(first, what))}")


def _rows(attr_rows: Any, n_attr: int, what: str = "attr_rows") -> np.ndarray:
    a = np.atleast_2d(np.asarray(attr_rows, dtype=np.float64))
    if a.ndim != 2 or a.shape[1] != n_attr:
        raise ValueError(f"{what} must be (n, {n_attr}) encoded attribute rows, got shape {a.shape}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}: {int(bad.sum())} of {len(a)} rows have non-finite values (first row "
                         f"{int(np.flatnonzero(bad)[0])}); encode attributes with the emulator's encoder, which "
                         "fills missing values")
    return a


def _fixed(fixed_mask: Any, fixed_values: Any, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    if fixed_mask is None:
        return np.zeros(n_params, dtype=bool), np.full(n_params, 0.5)
    mask = np.broadcast_to(np.asarray(fixed_mask, dtype=bool), (n_params,)).copy()
    if fixed_values is None:
        raise ConfigError("fixed_mask is given without fixed_values")
    values = np.broadcast_to(np.asarray(fixed_values, dtype=np.float64), (n_params,)).copy()
    out = mask & ~((values >= 0) & (values <= 1))
    if out.any():
        raise ConfigError(f"fixed_values must lie in the unit cube; parameter(s) {np.flatnonzero(out).tolist()} "
                          f"have {values[out].tolist()}")
    values[~mask] = 0.5
    return mask, values


def ensemble_scores(emulators: Any, attr_rows: np.ndarray, u: np.ndarray, *,
                    target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread over emulator members of the predicted target at ``(attr_rows, u)``.

    Parameters
    ----------
    emulators : emulator or list of emulators
        Fitted emulators with ``predict_features`` (any backend).
    attr_rows : numpy.ndarray
        ``(n, n_attr)`` encoded attribute rows.
    u : numpy.ndarray
        ``(n, n_params)`` parameters in the unit cube.
    target : str, optional
        Default the emulators' first target.

    Returns
    -------
    mean, std : numpy.ndarray
        ``(n,)`` each, in the target's units; ``std`` (population standard deviation over
        members) is 0 for one member. ``std`` serves as the ``difficulty`` of
        :class:`lsegeo.regionalize.conformal.ScoreIntervals`.
    """
    members = _as_list(emulators)
    j, _, _ = _target_of(members[0], target)
    pred = np.stack([np.asarray(em.predict_features(attr_rows, u), dtype=np.float64)[:, j] for em in members])
    return pred.mean(axis=0), pred.std(axis=0)


class AmortisedRegionalizer:
    r"""A network attributes -> unit-cube parameters, trained through frozen differentiable emulators.

    The method, loss, augmentation and stopping rule are in the module's documentation.

    Parameters
    ----------
    hidden : sequence of int
        Widths of the hidden layers (64, 64).
    epochs : int
        Most epochs of gradient training (400).
    lr : float
        Adam's learning rate (3e-3).
    penalty : float
        :math:`\lambda`, weight of the spread over emulator members, in units of the target (1.0:
        the network maximises mean minus one standard deviation).
    augment : float
        Synthetic (neighbour-interpolated, jittered) rows per training row and epoch (2.0); 0
        trains on the basins' own rows only.
    seed : int
        Seeds the network, the validation split, the warm start and the augmentation.
    n_jobs : int
        ``torch.set_num_threads`` while fitting and predicting.
    batch_size : int
        Rows per gradient step (128).
    patience : int
        Epochs without improvement of the validation loss before stopping (40).
    min_delta : float
        Least improvement that counts (1e-5, target units).
    validation_fraction : float
        Share of training basins held out for early stopping (0.15; none below 20 basins).
    l2 : float
        :math:`\kappa`, weight of the mean squared output logit (1e-4).
    jitter : float
        Standard deviation of the Gaussian jitter of synthetic rows, standardized units (0.05).
    neighbours : int
        Synthetic rows interpolate towards one of this many nearest training basins (5).
    warm_start : int
        Sobol' points scored per training basin for the warm start (256; 0: none).
    warm_epochs : int
        Full-batch steps fitting the network to the warm-start points (300).

    Attributes
    ----------
    history : dict
        ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``, ``epochs``, ``seconds``,
        ``warm_start_seconds``, ``n_train``, ``n_validation``, ``n_members`` and the mean objective
        (mean and spread over members) at the training and validation basins.
    """

    def __init__(self, hidden: Sequence[int] = (64, 64), epochs: int = 400, lr: float = 3e-3, penalty: float = 1.0,
                 augment: float = 2.0, seed: int = 0, n_jobs: int = 1, *, batch_size: int = 128, patience: int = 40,
                 min_delta: float = 1e-5, validation_fraction: float = 0.15, l2: float = 1e-4, jitter: float = 0.05,
                 neighbours: int = 5, warm_start: int = 256, warm_epochs: int = 300) -> None:
        self.options: dict[str, Any] = {
            "hidden": [int(h) for h in hidden], "epochs": int(epochs), "lr": float(lr), "penalty": float(penalty),
            "augment": float(augment), "batch_size": int(batch_size), "patience": int(patience),
            "min_delta": float(min_delta), "validation_fraction": float(validation_fraction), "l2": float(l2),
            "jitter": float(jitter), "neighbours": int(neighbours), "warm_start": int(warm_start),
            "warm_epochs": int(warm_epochs)}
        o = self.options
        checks = {"epochs": o["epochs"] >= 1, "lr": o["lr"] > 0, "penalty": o["penalty"] >= 0,
                  "augment": o["augment"] >= 0, "batch_size": o["batch_size"] >= 1, "patience": o["patience"] >= 1,
                  "validation_fraction": 0 <= o["validation_fraction"] < 1, "l2": o["l2"] >= 0,
                  "jitter": o["jitter"] >= 0, "neighbours": o["neighbours"] >= 1, "warm_start": o["warm_start"] >= 0,
                  "warm_epochs": o["warm_epochs"] >= 0, "hidden": all(h >= 1 for h in o["hidden"])}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid lse-amortised setting(s): {', '.join(f'{k}={o[k]!r}' for k in bad)}")
        self.seed = int(seed)
        self.n_jobs = max(1, int(n_jobs))
        self.net: Any = None
        self.param_names: list[str] = []
        self.attribute_names: list[str] = []
        self.target = ""
        self.sense = "max"
        self.fixed_mask = np.zeros(0, dtype=bool)
        self.fixed_values = np.zeros(0)
        self.x_mean = np.zeros(0)
        self.x_std = np.zeros(0)
        self.history: dict[str, Any] = {}

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, emulators: Any, attr_rows: np.ndarray, *, target: str | None = None,
            fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None) -> AmortisedRegionalizer:
        """Train the network on the attribute rows of training basins.

        Parameters
        ----------
        emulators : LargeSampleEmulator or list of them
            Fitted LSEs with the ``torch_mlp`` backend (an ensemble: fitted with different seeds),
            with the same parameters, encoded attributes and targets. They stay frozen.
        attr_rows : numpy.ndarray
            ``(n_basins, n_attr)`` encoded attributes (columns ``emulator.attribute_names``) of
            the training basins, e.g. ``emulator.attributes`` of the basins with rows.
        target : str, optional
            The emulator target to optimise; default the first. Its sense (``target_senses``)
            says whether to maximise (default) or minimise.
        fixed_mask : bool array (n_params,), optional
            Parameters held at ``fixed_values`` (unit cube) for every target.
        fixed_values : array (n_params,), optional

        Returns
        -------
        AmortisedRegionalizer
            ``self``.

        Raises
        ------
        ConfigError
            An emulator is not differentiable, the members differ, the target is unknown or a
            fixed value is outside the unit cube.
        ValueError
            ``attr_rows`` has the wrong number of columns, non-finite values or fewer than 2 rows.
        """
        torch = _torch()
        t0 = time.perf_counter()
        members = _as_list(emulators)
        if not members:
            raise ConfigError("no emulator given")
        _check_members(members)
        j, name, sense = _target_of(members[0], target)
        funcs = [_frozen_function(em) for em in members]
        self.param_names = list(members[0].param_names)
        self.attribute_names = list(members[0].attribute_names)
        self.target, self.sense = name, sense
        n_par = len(self.param_names)
        a = _rows(attr_rows, len(self.attribute_names))
        if len(a) < 2:
            raise ValueError(f"attr_rows has {len(a)} row(s); the network needs at least 2 training basins")
        self.fixed_mask, self.fixed_values = _fixed(fixed_mask, fixed_values, n_par)
        self.x_mean = a.mean(axis=0)
        sd = a.std(axis=0)
        self.x_std = np.where(sd > 0, sd, 1.0)
        o = self.options
        rng = np.random.default_rng(self.seed)
        n_val = round(o["validation_fraction"] * len(a)) if len(a) >= 20 else 0
        perm = rng.permutation(len(a))
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            torch.manual_seed(self.seed)
            self.net = _network(a.shape[1], n_par, o["hidden"])
            objective = _Objective(torch, funcs, j, 1.0 if sense == "max" else -1.0, o["penalty"])
            t1 = time.perf_counter()
            warm = self._warm_start(torch, objective, a[train], rng) if o["warm_start"] and o["warm_epochs"] else None
            t_warm = time.perf_counter() - t1
            hist = self._train(torch, objective, a[train], a[val] if n_val else a[train], rng)
        finally:
            torch.set_num_threads(threads)
        self.net.eval()
        u_tr, u_va = self.predict(a[train]), self.predict(a[val]) if n_val else None
        m_tr, s_tr = ensemble_scores(members, a[train], u_tr, target=name)
        summary = {"train_mean": float(m_tr.mean()), "train_spread": float(s_tr.mean())}
        if u_va is not None:
            m_va, s_va = ensemble_scores(members, a[val], u_va, target=name)
            summary.update(validation_mean=float(m_va.mean()), validation_spread=float(s_va.mean()))
        self.history = {**hist, "seconds": time.perf_counter() - t0, "warm_start_seconds": t_warm,
                        "warm_start_objective": warm, "n_train": int(len(train)), "n_validation": int(n_val),
                        "n_members": len(members), "objective": summary}
        logger.info("lse-amortised: %d members, %d training and %d validation basins, %d epochs (best %d) in %.1f s",
                    len(members), len(train), n_val, hist["epochs"], hist["best_epoch"], self.history["seconds"])
        return self

    def _u(self, logits):
        """Unit-cube parameters from logits, fixed dimensions set."""
        torch = _torch()
        u = torch.sigmoid(logits)
        if self.fixed_mask.any():
            mask = torch.as_tensor(self.fixed_mask)
            u = torch.where(mask, torch.as_tensor(self.fixed_values, dtype=u.dtype), u)
        return u

    def _standardise(self, a: np.ndarray):
        torch = _torch()
        return torch.from_numpy(((a - self.x_mean) / self.x_std).astype(np.float32))

    def _warm_start(self, torch: Any, objective: _Objective, a: np.ndarray, rng: np.random.Generator) -> float:
        """Fit the network to each basin's best Sobol' point (module notes); returns their mean objective."""
        n_par = len(self.param_names)
        n_pts = self.options["warm_start"]
        sobol = torch.quasirandom.SobolEngine(n_par, scramble=True, seed=int(rng.integers(2**31)))
        pts = sobol.draw(n_pts, dtype=torch.float64).numpy()
        pts[:, self.fixed_mask] = self.fixed_values[self.fixed_mask]
        pts_t = torch.from_numpy(pts.astype(np.float32))
        a_raw = torch.from_numpy(a.astype(np.float32))
        best = np.empty((len(a), n_par), dtype=np.float32)
        best_val = np.empty(len(a))
        per = max(1, _CHUNK // n_pts)
        with torch.no_grad():
            for lo in range(0, len(a), per):
                blk = a_raw[lo:lo + per]
                rows_a = blk.repeat_interleave(n_pts, dim=0)
                rows_u = pts_t.repeat(len(blk), 1)
                score = objective.score(rows_u, rows_a).reshape(len(blk), n_pts)
                k = torch.argmax(score, dim=1)
                best[lo:lo + len(blk)] = pts[k.numpy()]
                best_val[lo:lo + len(blk)] = score[torch.arange(len(blk)), k].numpy()
        x = self._standardise(a)
        y = torch.from_numpy(np.clip(best, 1e-3, 1 - 1e-3))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.options["lr"])
        self.net.train()
        for _ in range(self.options["warm_epochs"]):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(self._u(self.net(x)), y)
            loss.backward()
            opt.step()
        return float(objective.sense * best_val.mean())

    def _augmented(self, a: np.ndarray, binary: np.ndarray, nbr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Neighbour-mixup rows with jitter on the continuous columns (module notes)."""
        n_aug = int(round(self.options["augment"] * len(a)))
        if n_aug == 0 or nbr.shape[1] == 0:
            return a[:0]
        i = rng.integers(0, len(a), n_aug)
        jn = nbr[i, rng.integers(0, nbr.shape[1], n_aug)]
        t = rng.random(n_aug)[:, None]
        out = a[i] + t * (a[jn] - a[i])
        out[:, binary] = np.where(t < 0.5, a[i], a[jn])[:, binary]
        if self.options["jitter"] > 0:
            noise = rng.normal(0.0, self.options["jitter"], out.shape) * self.x_std
            out[:, ~binary] += noise[:, ~binary]
        return out

    def _train(self, torch: Any, objective: _Objective, a_tr: np.ndarray, a_va: np.ndarray,
               rng: np.random.Generator) -> dict[str, Any]:
        o = self.options
        binary = np.all((a_tr == 0) | (a_tr == 1), axis=0)
        nbr = _neighbours(torch, self._standardise(a_tr), min(o["neighbours"], len(a_tr) - 1))
        x_va, raw_va = self._standardise(a_va), torch.from_numpy(a_va.astype(np.float32))
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"])
        gen = torch.Generator().manual_seed(self.seed)
        train_loss, val_loss = [], []
        best, best_state, best_epoch, since, epoch = np.inf, None, 0, 0, 0
        for epoch in range(1, o["epochs"] + 1):  # noqa: B007 (read after the loop)
            rows = np.vstack([a_tr, self._augmented(a_tr, binary, nbr, rng)])
            x, raw = self._standardise(rows), torch.from_numpy(rows.astype(np.float32))
            order = torch.randperm(len(rows), generator=gen)
            self.net.train()
            total = 0.0
            for lo in range(0, len(rows), o["batch_size"]):
                idx = order[lo:lo + o["batch_size"]]
                logits = self.net(x[idx])
                loss = -objective.score(self._u(logits), raw[idx]).mean() + o["l2"] * (logits ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.net.eval()
            with torch.no_grad():
                v = -float(objective.score(self._u(self.net(x_va)), raw_va).mean())
            train_loss.append(total / len(rows))
            val_loss.append(v)
            if v < best - o["min_delta"]:
                best, best_epoch, since = v, epoch, 0
                best_state = {kk: t.detach().clone() for kk, t in self.net.state_dict().items()}
            else:
                since += 1
                if since >= o["patience"]:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        return {"train_loss": train_loss, "val_loss": val_loss, "best_epoch": best_epoch, "epochs": epoch,
                "best_validation_loss": float(best)}

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, attr_rows: np.ndarray) -> np.ndarray:
        """Parameters for encoded attribute rows.

        Parameters
        ----------
        attr_rows : numpy.ndarray
            ``(n, n_attr)`` encoded attributes (columns :attr:`attribute_names`), e.g.
            ``emulator.encode(domain.attributes)``.

        Returns
        -------
        numpy.ndarray
            ``(n, n_params)`` float64 in the unit cube (``emulator.space.from_unit`` maps them to
            parameter values); fixed parameters at their values.

        Raises
        ------
        RuntimeError
            Not fitted or loaded.
        ValueError
            Wrong number of columns or non-finite values.
        """
        if self.net is None:
            raise RuntimeError("the amortised regionalizer is not fitted (call fit) or loaded")
        torch = _torch()
        a = _rows(attr_rows, len(self.attribute_names))
        out = np.empty((len(a), len(self.param_names)))
        threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            with torch.no_grad():
                for lo in range(0, len(a), _CHUNK):
                    out[lo:lo + _CHUNK] = self._u(self.net(self._standardise(a[lo:lo + _CHUNK]))).numpy()
        finally:
            torch.set_num_threads(threads)
        return out

    # -- saving -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``amortised.json``, ``amortised_state.pt`` and ``amortised_scaling.npz`` into ``directory``.

        Parameters
        ----------
        directory : path-like
            Created if needed; files of the same names are replaced.

        Returns
        -------
        pathlib.Path
            ``directory``.
        """
        if self.net is None:
            raise RuntimeError("the amortised regionalizer is not fitted (call fit) or loaded")
        from lsegeo import __version__
        from lsegeo.emulators.archive import save_npz

        torch = _torch()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), directory / _STATE)
        save_npz(directory / _SCALING, x_mean=self.x_mean, x_std=self.x_std,
                 fixed_mask=self.fixed_mask.astype(np.int8), fixed_values=self.fixed_values)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "lsegeo_version": __version__,
                "method": "lse-amortised", "options": self.options, "seed": self.seed, "n_jobs": self.n_jobs,
                "param_names": self.param_names, "attribute_names": self.attribute_names, "target": self.target,
                "sense": self.sense, "history": self.history}
        (directory / _META).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> AmortisedRegionalizer:
        """Read a regionalizer written by :meth:`save`.

        Parameters
        ----------
        directory : path-like
        n_jobs : int, optional
            Threads for :meth:`predict`; default the saved value.

        Raises
        ------
        lsegeo.errors.DataNotFoundError
            A file is missing.
        lsegeo.errors.InputFormatError
            ``amortised.json`` is not of this format.
        """
        from lsegeo.emulators.archive import load_npz
        from lsegeo.errors import DataNotFoundError

        torch = _torch()
        directory = Path(directory)
        missing = [f for f in (_META, _STATE, _SCALING) if not (directory / f).is_file()]
        if missing:
            raise DataNotFoundError(f"{directory}: no {', '.join(missing)} (expected a saved lse-amortised network)")
        meta = json.loads((directory / _META).read_text())
        if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise InputFormatError(str(directory / _META), None,
                                   f"format {meta.get('format')!r} version {meta.get('format_version')!r}; expected "
                                   f"{FORMAT!r} version <= {FORMAT_VERSION}")
        opts = dict(meta["options"])
        hidden = opts.pop("hidden")
        out = cls(hidden=hidden, seed=meta["seed"], n_jobs=n_jobs or meta.get("n_jobs", 1), **opts)
        out.param_names, out.attribute_names = list(meta["param_names"]), list(meta["attribute_names"])
        out.target, out.sense, out.history = meta["target"], meta["sense"], dict(meta.get("history", {}))
        s = load_npz(directory / _SCALING)
        out.x_mean, out.x_std = s["x_mean"], s["x_std"]
        out.fixed_mask, out.fixed_values = s["fixed_mask"].astype(bool), s["fixed_values"]
        net = _network(len(out.attribute_names), len(out.param_names), hidden)
        net.load_state_dict(torch.load(directory / _STATE, weights_only=True, map_location="cpu"))
        out.net = net.eval()
        return out


def _neighbours(torch: Any, z: Any, k: int) -> np.ndarray:
    """``(n, k)`` indices of each row's ``k`` nearest other rows (Euclidean), in blocks of rows."""
    out = np.zeros((len(z), k), dtype=np.int64)
    if k <= 0:
        return out
    step = max(1, _CHUNK // max(len(z), 1))
    for lo in range(0, len(z), step):
        d = torch.cdist(z[lo:lo + step], z)
        d[torch.arange(len(d)), torch.arange(lo, lo + len(d))] = float("inf")  # not its own neighbour
        out[lo:lo + len(d)] = torch.topk(d, k, dim=1, largest=False).indices.numpy()
    return out


class _Objective:
    """Per-row objective ``s * mean_m f_m - penalty * std_m f_m`` (to maximise) of frozen members."""

    def __init__(self, torch: Any, funcs: list[Any], j: int, sense: float, penalty: float) -> None:
        self.torch, self.funcs, self.j, self.sense, self.penalty = torch, funcs, j, sense, penalty

    def score(self, u: Any, a_raw: Any) -> Any:
        """``(n,)`` objective of unit-cube ``u`` ``(n, n_params)`` at raw encoded attributes ``(n, n_attr)``."""
        x = self.torch.cat([u, a_raw], dim=1)
        y = self.torch.stack([f(x)[:, self.j] for f in self.funcs], dim=1) * self.sense
        out = y.mean(dim=1)
        if len(self.funcs) > 1 and self.penalty > 0:
            out = out - self.penalty * (y.var(dim=1, unbiased=False) + 1e-12).sqrt()
        return out
