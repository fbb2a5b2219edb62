"""Pipeline step 2, *design*: parameter spaces and the ensemble members drawn from them.

A :class:`ParameterSpace` holds, for each parameter, its bounds, default, and whether it is
sampled on a linear or a logarithmic scale. Designs are seeded Latin hypercubes
(:class:`scipy.stats.qmc.LatinHypercube`) in the unit cube, mapped to parameter values through
each parameter's scale; member 0 is the default parameter set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

__all__ = ["BOUND_ROUNDING", "Parameter", "ParameterSpace", "latin_hypercube", "reflect_unit"]

#: share of a parameter's range by which a stored or computed value may miss a bound by rounding
#: alone (``exp(log(upper))`` of a log-scale parameter; a float64 set against its sampled bound,
#: e.g. the CTSM ensemble's kmax 2.359075e-09 against 2.3590750000000006e-09); such a value is
#: taken as the bound, anything further out is refused
BOUND_ROUNDING = 1e-9


@dataclass(frozen=True)
class Parameter:
    """One calibrated parameter.

    Parameters
    ----------
    name : str
        Short name, as the model adapter knows it.
    lower, upper : float
        Bounds of the sampled range.
    default : float
        The value used when the parameter is not calibrated (member 0 of every design).
    scale : {"linear", "log"}
        Scale on which the design is uniform; ``"log"`` needs ``lower > 0``.
    units : str
        UDUNITS string, ``"1"`` for dimensionless.
    description : str
        What the parameter does.
    source : str
        Where the bounds come from (citation).
    """

    name: str
    lower: float
    upper: float
    default: float
    scale: Literal["linear", "log"] = "linear"
    units: str = "1"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"parameter {self.name!r}: lower {self.lower} must be below upper {self.upper}")
        if not self.lower <= self.default <= self.upper:
            raise ValueError(f"parameter {self.name!r}: default {self.default} is outside "
                             f"[{self.lower}, {self.upper}]")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"parameter {self.name!r}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == "log" and self.lower <= 0:
            raise ValueError(f"parameter {self.name!r}: a log scale needs lower > 0, got {self.lower}")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map values in [0, 1] to parameter values on this parameter's scale."""
        u = np.asarray(u, dtype=np.float64)
        if self.scale == "log":
            lo, hi = np.log(self.lower), np.log(self.upper)
            return np.exp(lo + u * (hi - lo))
        return self.lower + u * (self.upper - self.lower)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Map parameter values to [0, 1] on this parameter's scale (the inverse of :meth:`from_unit`)."""
        x = np.asarray(x, dtype=np.float64)
        if self.scale == "log":
            lo, hi = np.log(self.lower), np.log(self.upper)
            return (np.log(x) - lo) / (hi - lo)
        return (x - self.lower) / (self.upper - self.lower)


@dataclass(frozen=True)
class ParameterSpace:
    """An ordered set of parameters."""

    parameters: tuple[Parameter, ...]
    name: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter space {self.name!r}: duplicate parameter names in {names}")

    @property
    def names(self) -> list[str]:
        """Parameter names, in order."""
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"parameter {name!r} is not in space {self.name!r}; it has {', '.join(self.names)}")

    @property
    def lower(self) -> np.ndarray:
        """``(n_params,)`` lower bounds."""
        return np.array([p.lower for p in self.parameters])

    @property
    def upper(self) -> np.ndarray:
        """``(n_params,)`` upper bounds."""
        return np.array([p.upper for p in self.parameters])

    @property
    def default(self) -> np.ndarray:
        """``(n_params,)`` default values (member 0 of every design)."""
        return np.array([p.default for p in self.parameters])

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map a (..., n_params) array in the unit cube to parameter values."""
        u = np.asarray(u, dtype=np.float64)
        return np.stack([p.from_unit(u[..., i]) for i, p in enumerate(self.parameters)], axis=-1)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Map a (..., n_params) array of parameter values to the unit cube."""
        x = np.asarray(x, dtype=np.float64)
        return np.stack([p.to_unit(x[..., i]) for i, p in enumerate(self.parameters)], axis=-1)

    def subset(self, names: Iterable[str]) -> ParameterSpace:
        """The space of the named parameters only, in this space's order."""
        keep = set(names)
        unknown = keep - set(self.names)
        if unknown:
            raise KeyError(f"parameters {sorted(unknown)} are not in space {self.name!r}")
        return ParameterSpace(tuple(p for p in self.parameters if p.name in keep), self.name)

    def to_dict(self) -> dict:
        """The space as JSON-serialisable numbers and strings (name, bounds, default, scale, units).

        Descriptions and sources are left out: a saved emulator needs only the unit-cube mapping.
        """
        return {"name": self.name,
                "parameters": [{"name": p.name, "lower": p.lower, "upper": p.upper, "default": p.default,
                                "scale": p.scale, "units": p.units} for p in self.parameters]}

    @classmethod
    def from_dict(cls, d: dict) -> ParameterSpace:
        """Inverse of :meth:`to_dict` (``units`` defaults to ``"1"``, ``name`` to ``""``)."""
        return cls(tuple(Parameter(q["name"], float(q["lower"]), float(q["upper"]), float(q["default"]),
                                   q["scale"], q.get("units", "1")) for q in d["parameters"]),
                   name=d.get("name", ""))

    def to_dataset(self) -> xr.Dataset:
        """The space as a Dataset over ``param`` (bounds, default, scale, units), for stores."""
        return xr.Dataset(
            {"lower": ("param", self.lower), "upper": ("param", self.upper),
             "default": ("param", self.default),
             "scale": ("param", np.array([p.scale for p in self.parameters], dtype=object)),
             "units": ("param", np.array([p.units for p in self.parameters], dtype=object)),
             "description": ("param", np.array([p.description for p in self.parameters], dtype=object))},
            coords={"param": np.array(self.names, dtype=object)},
        )


def latin_hypercube(space: ParameterSpace, n: int, seed: int, include_default: bool = True,
                    fixed: Sequence[str] = ()) -> np.ndarray:
    """A seeded Latin hypercube design over a parameter space.

    Parameters
    ----------
    space : ParameterSpace
    n : int
        Number of members, the default member included when ``include_default``.
    seed : int
        Seed of :class:`scipy.stats.qmc.LatinHypercube`; the same seed gives the same design.
    include_default : bool
        Put the default parameter set first (member 0); the other ``n - 1`` members are the
        Latin hypercube.
    fixed : sequence of str
        Parameters held at their default in every member.

    Returns
    -------
    numpy.ndarray
        ``(n, len(space))`` parameter values.
    """
    from scipy.stats import qmc

    if n < 1:
        raise ValueError(f"a design needs at least one member, got n={n}")
    m = n - 1 if include_default else n
    rows = []
    if include_default:
        rows.append(space.default[None, :])
    if m > 0:
        u = qmc.LatinHypercube(d=len(space), seed=np.random.default_rng(seed)).random(m)
        rows.append(space.from_unit(u))
    x = np.concatenate(rows, axis=0)
    for name in fixed:
        x[:, space.names.index(space[name].name)] = space[name].default
    return x


def reflect_unit(x: np.ndarray) -> np.ndarray:
    """Reflect values that left the unit interval back into [0, 1].

    The rule of DDS (Tolson & Shoemaker 2007, step 4): a value below 0 becomes its mirror image
    ``-x``, one above 1 becomes ``2 - x``; a value still outside after its reflection is set to
    the bound it crossed.

    Parameters
    ----------
    x : numpy.ndarray
        Perturbed unit-cube values, any shape.

    Returns
    -------
    numpy.ndarray
        The values in [0, 1], same shape.
    """
    low = x < 0.0
    x = np.where(low, -x, x)
    x = np.where(low & (x > 1.0), 0.0, x)
    high = x > 1.0
    x = np.where(high, 2.0 - x, x)
    return np.where(high & (x < 0.0), 1.0, x)
