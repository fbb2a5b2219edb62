"""The CTSM parameter registry: a table shipped as package data, validated when it is loaded.

The table ``lsegeo/data/ctsm_parameters.csv`` has one row per calibratable CTSM parameter: the 27
parameters of the sensitivity ensemble of Tang et al. (2025) and the 3 rain/snow thresholds bound
to one of them. Its columns:

``name``, ``long_name``, ``units`` (UDUNITS), ``group``
    What the parameter is.
``default``, ``default_kind``
    The default value of the parameter's spatial mean. ``global``: one value everywhere, and it
    must lie inside the bounds. ``per_cell``: the real default is the field of the basin's surface
    dataset (FMAX, zbedrock); the table holds the mean of the study's basins for reference, which
    may lie outside the bounds (zbedrock's 10.64 m against [0.1, 10]).
``lower``, ``upper``
    Calibration bounds of the spatial mean: the authors' final table
    (``calib_parameter_table_2410.csv``) for the final 16, the wide "bigrange" bounds of their
    ``CTSM_CAMELS_SA_param_240202*.csv`` for the others.
``sa_lower``, ``sa_upper``
    The range sampled by the 201-member sensitivity ensemble (``sa_parameter_table.csv``).
``scale``
    ``log`` where the calibration range spans two decades or more (``upper / lower >= 100``:
    fff, baseflow_scalar, hksat_sf, ...), else ``linear``. The study sampled every parameter
    linearly; lsegeo's designs follow this column.
``perturbation``
    ``multiplicative``: a field is multiplied by one factor so that its mean becomes the member's
    value (its pattern kept); ``additive``: the field is shifted by one amount.
``bound_to``
    The master of a bound parameter (empty otherwise). A bound parameter is additive and moves by
    the master's shift from the master's default: ``value = default + (master - master default)``.
``final16``, ``rank2410``
    In the authors' final 16; their rank of mean first-order sensitivity.
``where_5.1``, ``where_5.3``, ``where_5.4``
    Where CTSM reads the parameter in each supported layout (see :func:`layout_of`):
    ``param:<var>`` (a 0-d variable of the parameter file), ``param:<var>(<dims>)`` (e.g.
    ``medlynslope(pft)``, ``kmax(segment,pft)``), ``surfdata:<FIELD>`` (per grid cell of the
    surface dataset) or ``namelist:<key>`` (a ``user_nl_clm`` line).

Every rule is checked on load; a broken row raises :class:`~lsegeo.errors.InputFormatError`
naming the file, the line, the column and what was expected.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from lsegeo.design import BOUND_ROUNDING, Parameter, ParameterSpace
from lsegeo.errors import InputFormatError

__all__ = ["LAYOUTS", "Location", "CtsmParameter", "CtsmRegistry", "read_registry", "load_registry", "layout_of"]

#: the supported parameter layouts; each is the CTSM version that introduced it
LAYOUTS: tuple[str, ...] = ("5.1", "5.3", "5.4")
#: (major, minor, tag number) at which each layout starts: ctsm5.3.010 moved interception_fraction,
#: maximum_leaf_wetted_fraction and upplim_destruct_metamorph from the namelist to the parameter
#: file; ctsm5.4.025 moved baseflow_scalar and precip_repartition_*
_LAYOUT_START = {"5.1": (5, 1, 0), "5.3": (5, 3, 10), "5.4": (5, 4, 25)}
_KINDS = ("param", "surfdata", "namelist")
_PARAM_DIMS = {"pft", "segment"}
_REQUIRED = ("name", "long_name", "units", "group", "default", "default_kind", "lower", "upper",
             "sa_lower", "sa_upper", "scale", "perturbation", "bound_to", "final16", "rank2410")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCATION = re.compile(r"^(?P<kind>[a-z]+):(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<dims>[^)]*)\))?$")


def layout_of(version: str) -> str:
    """The parameter layout of a CTSM version.

    Parameters
    ----------
    version : str
        A layout key (``"5.1"``, ``"5.3"``, ``"5.4"``) or a CTSM tag (``"ctsm5.3.012"``,
        ``"5.4.031"``, ``"ctsm6.0.000"``). A tag maps to the newest layout that started at or
        before it: ``ctsm5.3.009`` still has the 5.1 layout, ``ctsm5.4.024`` the 5.3 one.

    Returns
    -------
    str
        One of :data:`LAYOUTS`.

    Raises
    ------
    ValueError
        For text that is no version, or a version older than CTSM 5.1.
    """
    text = str(version).strip()
    if text in LAYOUTS:
        return text
    m = re.fullmatch(r"(?:ctsm)?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m is None:
        raise ValueError(f"CTSM version {version!r} is neither a layout ({', '.join(LAYOUTS)}) "
                         "nor a tag like 'ctsm5.3.012'")
    tag = (int(m[1]), int(m[2]), int(m[3] or 0))
    found = [key for key, start in _LAYOUT_START.items() if tag >= start]
    if not found:
        raise ValueError(f"CTSM version {version!r} is older than 5.1, the oldest supported layout")
    return found[-1]


@dataclass(frozen=True)
class Location:
    """Where CTSM reads one parameter in one layout.

    Parameters
    ----------
    kind : {"param", "surfdata", "namelist"}
        The parameter file, the surface dataset or ``user_nl_clm``.
    variable : str
        The netCDF variable or namelist key.
    dims : tuple of str
        Dimensions of a parameter-file variable (``()`` for 0-d, ``("pft",)``,
        ``("segment", "pft")``); ``()`` for the other kinds.
    """

    kind: Literal["param", "surfdata", "namelist"]
    variable: str
    dims: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}:{self.variable}" + (f"({','.join(self.dims)})" if self.dims else "")


@dataclass(frozen=True)
class CtsmParameter:
    """One row of the registry (the columns are described in the module docstring)."""

    name: str
    long_name: str
    units: str
    group: str
    default: float
    default_kind: Literal["global", "per_cell"]
    lower: float
    upper: float
    sa_lower: float
    sa_upper: float
    scale: Literal["linear", "log"]
    perturbation: Literal["multiplicative", "additive"]
    bound_to: str | None
    final16: bool
    rank2410: int | None
    where: tuple[tuple[str, Location], ...]

    def location(self, version: str) -> Location:
        """Where CTSM ``version`` (a layout or tag, see :func:`layout_of`) reads this parameter."""
        return dict(self.where)[layout_of(version)]


class CtsmRegistry:
    """The validated registry: parameters in table order, looked up by name.

    Parameters
    ----------
    parameters : sequence of CtsmParameter
    source : str
        The table it was read from (named in error messages).
    """

    def __init__(self, parameters: tuple[CtsmParameter, ...], source: str = "") -> None:
        self.parameters = tuple(parameters)
        self.source = source
        self._by_name = {p.name: p for p in self.parameters}

    @property
    def names(self) -> list[str]:
        """Every parameter name, bound ones included, in table order."""
        return [p.name for p in self.parameters]

    @property
    def free(self) -> list[str]:
        """Names of the parameters that can be calibrated (not bound to another one)."""
        return [p.name for p in self.parameters if p.bound_to is None]

    @property
    def final16(self) -> list[str]:
        """The authors' final 16 calibrated parameters, in table order."""
        return [p.name for p in self.parameters if p.final16]

    def __len__(self) -> int:
        return len(self.parameters)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> CtsmParameter:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a CTSM parameter of the registry {self.source}; "
                           f"known: {', '.join(self.names)}") from None

    def bound(self, master: str) -> list[CtsmParameter]:
        """The parameters bound to ``master`` (moved by its additive shift)."""
        return [p for p in self.parameters if p.bound_to == master]

    def with_bounds(self, bounds: Mapping[str, Sequence[float]], source: str = "") -> CtsmRegistry:
        """The same registry with other ``[lower, upper]`` for the parameters named in ``bounds``.

        A store's parameter space may be wider than the registry's calibration bounds (a design
        sampled on the study's sensitivity ranges, or an ingested ensemble): its members' values
        are checked against the store's bounds.

        Parameters
        ----------
        bounds : mapping of str to (float, float)
            ``name -> (lower, upper)`` of free parameters of the registry.
        source : str, optional
            Where the bounds come from (named in error messages).

        Raises
        ------
        ValueError
            A name that is not a free parameter of the registry, or a pair that is not finite
            with ``lower < upper``.
        """
        where = source or "the caller"
        unknown = sorted(set(bounds) - set(self.free))
        if unknown:
            raise ValueError(f"bounds from {where} name {unknown}, which are not free CTSM parameters of "
                             f"{self.source} (free: {', '.join(self.free)})")
        params = []
        for p in self.parameters:
            if p.name in bounds:
                lower, upper = (float(v) for v in bounds[p.name])
                if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
                    raise ValueError(f"bounds of CTSM parameter {p.name!r} from {where} must be finite with "
                                     f"lower < upper, got [{lower}, {upper}]")
                p = dataclasses.replace(p, lower=lower, upper=upper)
            params.append(p)
        return CtsmRegistry(tuple(params), source=f"{self.source} (bounds of {where})")

    def check_value(self, name: str, value: float) -> float:
        """Return ``value`` as a float after checking it lies inside the parameter's bounds.

        A value outside by no more than :data:`lsegeo.design.BOUND_ROUNDING` of the range (``exp(log(upper))`` of a
        log-scale parameter can miss its bound by an ulp) is taken as the bound itself.

        Raises
        ------
        ValueError
            For a bound parameter (set its master instead), a non-finite value or one outside
            ``[lower, upper]``.
        """
        p = self[name]
        if p.bound_to is not None:
            raise ValueError(f"CTSM parameter {name!r} is bound to {p.bound_to!r}; set {p.bound_to!r} instead")
        value = float(value)
        slack = BOUND_ROUNDING * (p.upper - p.lower)
        if not math.isfinite(value) or not p.lower - slack <= value <= p.upper + slack:
            raise ValueError(f"CTSM parameter {name!r} = {value!r} is outside its bounds [{p.lower}, {p.upper}]")
        return min(max(value, p.lower), p.upper)

    def space(self, names: list[str] | tuple[str, ...] | None = None, version: str = "5.4", *,
              bounds: Literal["calibration", "sensitivity"] = "calibration") -> ParameterSpace:
        """A :class:`~lsegeo.design.ParameterSpace` of some parameters for one CTSM version.

        Parameters
        ----------
        names : sequence of str, optional
            The parameters, in the order wanted; default every free parameter. Bound
            parameters cannot be chosen: they follow their master.
        version : str
            CTSM layout or tag (:func:`layout_of`); recorded in the space's name.
        bounds : {"calibration", "sensitivity"}
            The calibration bounds (``lower``/``upper``) or the range of the sensitivity
            ensemble (``sa_lower``/``sa_upper``).

        Returns
        -------
        ParameterSpace
            Named ``ctsm<layout>-<bounds>``. A ``per_cell`` default outside the bounds is
            clipped into them (the space's default is only the design's member 0; the written
            inputs keep the basin's own field when a parameter is not given).
        """
        layout = layout_of(version)
        if bounds not in ("calibration", "sensitivity"):
            raise ValueError(f"bounds must be 'calibration' or 'sensitivity', got {bounds!r}")
        chosen = list(self.free if names is None else names)
        out = []
        for name in chosen:
            p = self[name]
            if p.bound_to is not None:
                raise ValueError(f"CTSM parameter {name!r} is bound to {p.bound_to!r} and cannot be in a space")
            lo, hi = (p.lower, p.upper) if bounds == "calibration" else (p.sa_lower, p.sa_upper)
            out.append(Parameter(p.name, lo, hi, min(max(p.default, lo), hi), p.scale, p.units,
                                 f"{p.long_name} [{p.location(layout)}]", f"{self.source} ({bounds} bounds)"))
        return ParameterSpace(tuple(out), name=f"ctsm{layout}-{bounds}")


# -- loading ---------------------------------------------------------------------------------------

def _fail(path: str, line: int, column: str, reason: str) -> InputFormatError:
    return InputFormatError(path, line, f"column {column!r}: {reason}")


def _number(row: dict, column: str, path: str, line: int, *, optional: bool = False) -> float | None:
    text = (row.get(column) or "").strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _fail(path, line, column, f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _fail(path, line, column, f"expected a finite number, got {text!r}")
    return value


def _choice(row: dict, column: str, allowed: tuple[str, ...], path: str, line: int) -> str:
    text = (row.get(column) or "").strip()
    if text not in allowed:
        raise _fail(path, line, column, f"expected one of {', '.join(allowed)}, got {text!r}")
    return text


def _location(text: str, column: str, path: str, line: int) -> Location:
    m = _LOCATION.match(text.strip())
    if m is None:
        raise _fail(path, line, column, f"expected 'kind:variable' or 'param:variable(dims)', got {text!r}")
    kind, var = m["kind"], m["var"]
    if kind not in _KINDS:
        raise _fail(path, line, column, f"unknown location kind {kind!r}; known kinds: {', '.join(_KINDS)}")
    dims: tuple[str, ...] = ()
    if m["dims"] is not None:
        if kind != "param":
            raise _fail(path, line, column, f"only 'param' locations take dimensions, got {text!r}")
        dims = tuple(d.strip() for d in m["dims"].split(",") if d.strip())
        bad = [d for d in dims if d not in _PARAM_DIMS]
        if not dims or bad:
            raise _fail(path, line, column, f"dimensions must be some of {sorted(_PARAM_DIMS)}, got {text!r}")
    return Location(kind, var, dims)  # type: ignore[arg-type]


def _row(row: dict, path: str, line: int, versions: list[str]) -> CtsmParameter:
    name = (row.get("name") or "").strip()
    if not _IDENT.match(name):
        raise _fail(path, line, "name", f"expected an identifier, got {name!r}")
    default_kind = _choice(row, "default_kind", ("global", "per_cell"), path, line)
    lower, upper = _number(row, "lower", path, line), _number(row, "upper", path, line)
    sa_lower, sa_upper = _number(row, "sa_lower", path, line), _number(row, "sa_upper", path, line)
    default = _number(row, "default", path, line)
    if not lower < upper:
        raise _fail(path, line, "lower", f"lower {lower} must be below upper {upper}")
    if not sa_lower <= sa_upper:
        raise _fail(path, line, "sa_lower", f"sa_lower {sa_lower} must not exceed sa_upper {sa_upper}")
    if default_kind == "global" and not lower <= default <= upper:
        raise _fail(path, line, "default", f"default {default} is outside [{lower}, {upper}]; only a "
                    "'per_cell' default (a surface-dataset field) may lie outside the bounds")
    scale = _choice(row, "scale", ("linear", "log"), path, line)
    if scale == "log" and min(lower, sa_lower) <= 0:
        raise _fail(path, line, "scale", f"a log scale needs positive bounds, got lower {lower}, sa_lower {sa_lower}")
    perturbation = _choice(row, "perturbation", ("multiplicative", "additive"), path, line)
    final16 = _choice(row, "final16", ("true", "false"), path, line) == "true"
    rank = _number(row, "rank2410", path, line, optional=True)
    where = tuple((v, _location(row.get(f"where_{v}") or "", f"where_{v}", path, line)) for v in versions)
    for v, loc in where:
        if default_kind == "per_cell" and loc.kind != "surfdata":
            raise _fail(path, line, f"where_{v}", "a 'per_cell' default needs a surfdata location in every layout")
    bound_to = (row.get("bound_to") or "").strip() or None
    return CtsmParameter(name, (row.get("long_name") or "").strip(), (row.get("units") or "").strip(),
                         (row.get("group") or "").strip(), default, default_kind,  # type: ignore[arg-type]
                         lower, upper, sa_lower, sa_upper, scale, perturbation,  # type: ignore[arg-type]
                         bound_to, final16, None if rank is None else int(rank), where)


def _check_bindings(params: list[CtsmParameter], lines: dict[str, int], path: str) -> None:
    by_name = {p.name: p for p in params}
    for p in params:
        if p.bound_to is None:
            continue
        line = lines[p.name]
        master = by_name.get(p.bound_to)
        if master is None:
            raise _fail(path, line, "bound_to", f"unknown parameter {p.bound_to!r}")
        if master.bound_to is not None or master.name == p.name:
            raise _fail(path, line, "bound_to", f"{p.bound_to!r} is itself bound; bind to a free parameter")
        if p.perturbation != "additive" or master.perturbation != "additive":
            column = "perturbation" if p.perturbation != "additive" else "bound_to"
            raise _fail(path, line, column, f"a bound parameter and its master {master.name!r} "
                        "must both be additive")
        shift = p.default - master.default
        for lo, hi, what in ((p.lower, p.upper, "lower"), (p.sa_lower, p.sa_upper, "sa_lower")):
            m_lo, m_hi = getattr(master, what), getattr(master, what.replace("lower", "upper"))
            for mine, theirs, column in ((lo, m_lo, what), (hi, m_hi, what.replace("lower", "upper"))):
                if not math.isclose(mine, theirs + shift, abs_tol=1e-9):
                    raise _fail(path, line, column, f"bounds [{lo}, {hi}] must be the master's [{m_lo}, {m_hi}] "
                                f"shifted by the difference of the defaults ({shift:+g})")


def read_registry(path: str | Path) -> CtsmRegistry:
    """Read and validate a registry table (see the module docstring for its columns).

    Parameters
    ----------
    path : path-like
        A CSV file with the columns of ``lsegeo/data/ctsm_parameters.csv``.

    Returns
    -------
    CtsmRegistry

    Raises
    ------
    InputFormatError
        Naming the file, the line and the column: a missing column, a ``where_<version>`` column
        for an unknown layout or a layout without a column, a duplicate name, a bad number,
        ``lower >= upper``, a global default outside the bounds, an unknown location kind, a
        log scale with non-positive bounds, an unknown or invalid ``bound_to``.
    """
    path = str(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        rows = list(reader)
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise InputFormatError(path, 1, f"missing column(s) {', '.join(missing)}")
    versions = [h[len("where_"):] for h in header if h.startswith("where_")]
    unknown = [v for v in versions if v not in LAYOUTS]
    if unknown:
        raise InputFormatError(path, 1, f"column(s) {', '.join('where_' + v for v in unknown)}: unknown "
                               f"CTSM layout; supported: {', '.join(LAYOUTS)}")
    absent = [v for v in LAYOUTS if v not in versions]
    if absent:
        raise InputFormatError(path, 1, f"missing column(s) {', '.join('where_' + v for v in absent)}")
    params, lines = [], {}
    for i, row in enumerate(rows, start=2):
        p = _row({k.strip(): v for k, v in row.items() if k is not None}, path, i, list(LAYOUTS))
        if p.name in lines:
            raise _fail(path, i, "name", f"{p.name!r} repeats line {lines[p.name]}")
        lines[p.name] = i
        params.append(p)
    _check_bindings(params, lines, path)
    return CtsmRegistry(tuple(params), source=path)


@functools.cache
def load_registry() -> CtsmRegistry:
    """The registry shipped with lsegeo (``lsegeo/data/ctsm_parameters.csv``), validated once."""
    with resources.as_file(resources.files("lsegeo.data") / "ctsm_parameters.csv") as path:
        return read_registry(path)
