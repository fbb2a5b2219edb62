"""Defaults of the regionalization stage, one frozen dataclass each (the ``regionalize:`` section).

:class:`RegionalizeSettings` holds what every method shares (the objective and period that
rank parameter sets, the number of sets per target, the emulator ensemble) and one small
dataclass per family of methods: :class:`DonorSettings` (``donor-nearest``, ``donor-similar``,
``donor-ensemble``),
:class:`OptimiseSettings` (``lse-optimise``) and :class:`AmortisedSettings` (``lse-amortised``).
The configuration section :class:`lsegeo.config.RegionalizeConfig` takes its defaults from here
(a test checks it), so that a default is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.errors import ConfigError

__all__ = ["NLDAS_CONUS", "DonorSettings", "OptimiseSettings", "AmortisedSettings", "RegionalizeSettings",
           "DONOR_COMBINE"]

#: CONUS bounds of the 0.125-degree NLDAS-2 grid, (west, south, east, north) in degrees: 464 x 224 cells
#: (Xia et al. 2012, doi:10.1029/2011JD016048)
NLDAS_CONUS: tuple[float, float, float, float] = (-125.0, 25.0, -67.0, 53.0)

#: how ``donor-similar`` turns its k donors into a prediction (see :class:`DonorSettings`)
DONOR_COMBINE = ("nearest", "best_mean", "mean_response")


@dataclass(frozen=True)
class DonorSettings:
    """Donor methods.

    Attributes
    ----------
    k : int
        Donors per target for ``donor-similar`` (5; Oudin et al. 2008 found 4-7 donors best for
        output averaging). Their sets fill the ``sample`` dimension of the product.
    combine : {"best_mean", "nearest", "mean_response"}
        How ``donor-similar`` predicts: ``"nearest"`` the most similar donor's set;
        ``"best_mean"`` the set, among the k donors', with the best mean emulator-predicted score
        over the k donor basins (a set that transfers well among similar basins; needs an
        emulator, without one ``"nearest"`` is used); ``"mean_response"`` the mean of the
        simulated flows of all k donor sets (output averaging, Oudin et al. 2008).
    near, similar : int
        Donors of ``donor-ensemble``: the ``near`` spatially nearest training basins (centroid
        distance) and the ``similar`` most similar others (standardised attributes). Its
        prediction is the mean of the simulated flows of their calibrated sets. 3 and 3 were the
        best of the combinations measured in spatial cross-validation (docs/benchmarks.md).
    """

    k: int = 5
    combine: str = "best_mean"
    near: int = 3
    similar: int = 3

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"regionalize.donors.k must be at least 1, got {self.k}")
        if self.near < 0 or self.similar < 0:
            raise ConfigError(f"regionalize.donors.near and .similar must not be negative, got {self.near} and "
                              f"{self.similar}")
        if self.near + self.similar < 1:
            raise ConfigError("donors: near + similar must be at least 1 (the donors of donor-ensemble), "
                              f"got {self.near} + {self.similar}")
        if self.combine not in DONOR_COMBINE:
            raise ConfigError(f"regionalize.donors.combine must be one of {DONOR_COMBINE}, got {self.combine!r}")


@dataclass(frozen=True)
class OptimiseSettings:
    """The genetic algorithm of ``lse-optimise`` on the emulator (the study's method, section 2.4).

    Smaller than the calibration loop's search (:class:`~lsegeo.optimise.settings.ProposalSettings`:
    population 100, 100 generations, 3 restarts): a target gets one answer, not 50 proposals to
    run, and a grid has 10^4-10^5 targets. Identical attribute rows (grid cells inside one basin)
    are optimised once.

    Attributes
    ----------
    pop_size, n_gen, n_restarts : int
        Population, generations and independent runs per target.
    min_distance : float
        Least unit-cube distance between the K sets of a target (diversity of the samples).
    max_rows : int
        Most distinct attribute rows optimised; beyond, representatives are optimised and each
        target chooses among its nearest representatives' optima
        (:func:`lsegeo.regionalize.methods.lse_optimise`).
    trust_donors : int
        The search box of a target is the envelope of the calibrated sets of its this many
        spatially nearest and this many most similar training basins; 0: the whole unit cube
        (the study's search).
    trust_margin : float
        Unit-cube margin added on each side of that envelope.
    seed : int
    """

    pop_size: int = 60
    n_gen: int = 40
    n_restarts: int = 2
    min_distance: float = 0.05
    max_rows: int = 4000
    trust_donors: int = 5
    trust_margin: float = 0.1
    seed: int = 20251130

    def __post_init__(self) -> None:
        for name in ("pop_size", "n_gen", "n_restarts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"regionalize.optimise.{name} must be at least 1, got {getattr(self, name)}")
        if self.trust_donors < 0 or not 0 <= self.trust_margin <= 1:
            raise ConfigError(f"regionalize.optimise.trust_donors must be >= 0 and trust_margin in [0, 1], got "
                              f"{self.trust_donors} and {self.trust_margin}")
        if self.max_rows < 1:
            raise ConfigError(f"regionalize.optimise.max_rows must be at least 1, got {self.max_rows}")
        if self.pop_size < 4:
            raise ConfigError(f"regionalize.optimise.pop_size must be at least 4, got {self.pop_size}")


@dataclass(frozen=True)
class AmortisedSettings:
    """The attributes -> parameters network of ``lse-amortised`` (:mod:`lsegeo.regionalize.amortised`).

    Attributes
    ----------
    hidden : tuple of int
        Layer widths of the network.
    epochs : int
        Training epochs.
    penalty : float
        Weight of the spread of the emulator members' predictions in the loss.
    n_emulators : int
        Differentiable (``torch_mlp``) emulators it is trained through (seeds ``emulator.seed``,
        ``+1``, ...).
    backend_options : mapping
        Options of their ``torch_mlp`` backend (:class:`~lsegeo.emulators.backends.torch_mlp.TorchMLPBackend`):
        smaller and shorter-trained than the backend's defaults, since several are fitted.
    seed : int
    """

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 300
    penalty: float = 0.5
    n_emulators: int = 3
    backend_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType(
        {"hidden": [128, 128], "max_epochs": 60}))
    seed: int = 0


@dataclass(frozen=True)
class RegionalizeSettings:
    """What every regionalization method shares.

    Attributes
    ----------
    method : str
        A name of :data:`lsegeo.regionalize.methods.METHODS`.
    objective : str
        The score that ranks parameter sets and that the emulator predicts (the calibration's
        target, ``nkgeprime`` by default: KGE' bounded to (-1, 1]).
    period : str
        The period of that score.
    report_objective : str
        The score the cross-validation reports (``kgeprime``: KGE').
    n_samples : int
        K, parameter sets per target (sample 0 is the point estimate).
    n_emulators : int
        Emulators fitted with different seeds; their mean predicts the score and their spread is
        ``lse-amortised``'s penalty. 1 for the tree backends' speed.
    confidence : float
        Level of the score interval (split-conformal on cross-validation residuals).
    chunk_targets : int
        Targets (grid cells) per chunk of work; bounds memory.
    applicability_quantile : float
        Quantile of the training basins' own distances above which a target extrapolates.
    attributes : tuple of str or None
        The emulator's basin attributes; None: the 27 of the study.
    emulator : EmulatorSettings
    donors : DonorSettings
    optimise : OptimiseSettings
    amortised : AmortisedSettings
    """

    method: str = "lse-optimise"
    objective: str = "nkgeprime"
    period: str = "calibration"
    report_objective: str = "kgeprime"
    n_samples: int = 5
    n_emulators: int = 1
    confidence: float = 0.9
    chunk_targets: int = 20_000
    applicability_quantile: float = 0.95
    attributes: tuple[str, ...] | None = None
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    donors: DonorSettings = field(default_factory=DonorSettings)
    optimise: OptimiseSettings = field(default_factory=OptimiseSettings)
    amortised: AmortisedSettings = field(default_factory=AmortisedSettings)

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ConfigError(f"regionalize.n_samples must be at least 1, got {self.n_samples}")
        if self.n_emulators < 1:
            raise ConfigError(f"regionalize.n_emulators must be at least 1, got {self.n_emulators}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"regionalize.confidence must be in (0, 1), got {self.confidence}")
        if not 0 < self.applicability_quantile < 1:
            raise ConfigError(f"regionalize.applicability_quantile must be in (0, 1), got "
                              f"{self.applicability_quantile}")
        if self.chunk_targets < 1:
            raise ConfigError(f"regionalize.chunk_targets must be at least 1, got {self.chunk_targets}")
