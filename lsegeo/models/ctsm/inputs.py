"""One CTSM member's inputs: member values -> the edited parameter file, surface dataset, namelist.

A member is a mapping ``{parameter: value}`` of registry parameters (:mod:`.parameters`); each
value is the new **spatial mean** of the parameter's field, the quantity the study sampled and
the emulators learn. Where CTSM reads the parameter depends on the CTSM layout
(:func:`~lsegeo.models.ctsm.parameters.layout_of`), and how the field moves on the registry's
``perturbation``:

* a 0-d parameter-file variable or a namelist key is set to the value;
* a per-PFT (``pft``) or per segment and PFT (``segment, pft``) parameter-file variable is
  multiplied by ``value / mean(old)`` (``multiplicative``; the pattern across PFTs is kept,
  ``new / old`` is one constant) or shifted by ``value - mean(old)`` (``additive``). The mean is
  taken over the valid entries (finite, not ``_FillValue``) of **every** PFT, index 0
  (``not_vegetated``) included (``pft_mean="all"``): this is how the study's table defines its
  defaults and bounds (its taulnir default 0.392405063 is exactly 31/79, a mean over all 79
  entries). ``pft_mean="vegetated"`` leaves index 0 out of the mean (it is still scaled);
* a surface-dataset field (FMAX, zbedrock) is multiplied (or shifted) on the basin's land cells
  (``LANDFRAC_PFT > 0``, optionally restricted by ``cells``) so that their unweighted mean is the
  value; other cells are left alone. A single land cell simply gets the value;
* a bound parameter (the rain/snow thresholds) follows its master:
  ``value = default + (master value - master default)``, written wherever the layout reads it.

Parameters not in the member keep the base files' values. Every value is checked against its
bounds before anything is written; the files are written by :mod:`lsegeo.io.ctsm_files`, all of a
member's files at once or none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from lsegeo.errors import InputFormatError
from lsegeo.io import ctsm_files
from lsegeo.io.urls import write_text
from lsegeo.models.ctsm.parameters import CtsmRegistry, Location, layout_of, load_registry
from lsegeo.provenance import history_line

__all__ = ["Edit", "MemberInputs", "member_edits", "perturb_field", "fortran_real", "write_member_inputs",
           "PARAMFILE_NAME", "SURFDATA_NAME", "USER_NL_NAME"]

log = logging.getLogger(__name__)

#: file names inside a member's input folder
PARAMFILE_NAME = "paramfile.nc"
SURFDATA_NAME = "fsurdat.nc"
USER_NL_NAME = "user_nl_clm"


@dataclass(frozen=True)
class Edit:
    """One change a member makes.

    Parameters
    ----------
    parameter : str
        Registry name.
    location : Location
        Where the layout reads it.
    value : float
        The new spatial mean (or value, for 0-d variables and namelist keys).
    perturbation : {"multiplicative", "additive"}
        How a field moves to the new mean.
    """

    parameter: str
    location: Location
    value: float
    perturbation: Literal["multiplicative", "additive"]


@dataclass(frozen=True)
class MemberInputs:
    """What :func:`write_member_inputs` wrote.

    Parameters
    ----------
    directory : Path
        The member's input folder.
    paramfile, surfdata : Path or None
        The edited copies (``None`` when the member changes nothing in that file).
    user_nl_clm : tuple of str
        The lines for the case's ``user_nl_clm`` (also written to ``directory / "user_nl_clm"``).
    changes : dict of str to str
        Per parameter, what was done (``"medlynslope(pft) x1.03: mean 4.84 -> 4.99"``).
    layout : str
        The CTSM layout the inputs are for.
    """

    directory: Path
    paramfile: Path | None
    surfdata: Path | None
    user_nl_clm: tuple[str, ...]
    changes: dict[str, str] = field(default_factory=dict)
    layout: str = ""


def member_edits(values: Mapping[str, float], version: str, registry: CtsmRegistry | None = None) -> list[Edit]:
    """The edits of one member: values checked against their bounds, bound parameters added.

    Parameters
    ----------
    values : mapping of str to float
        New spatial means of free registry parameters.
    version : str
        CTSM layout or tag.
    registry : CtsmRegistry, optional
        Default: the shipped registry.

    Returns
    -------
    list of Edit
        In registry order.

    Raises
    ------
    KeyError
        For a name that is not in the registry.
    ValueError
        For a bound parameter given directly, or a value outside its bounds.
    """
    reg = registry or load_registry()
    layout = layout_of(version)
    checked = {name: reg.check_value(name, v) for name, v in values.items()}
    edits = []
    for p in reg.parameters:
        if p.name in checked:
            value = checked[p.name]
        elif p.bound_to in checked:
            value = p.default + (checked[p.bound_to] - reg[p.bound_to].default)
        else:
            continue
        edits.append(Edit(p.name, p.location(layout), value, p.perturbation))
    return edits


def perturb_field(old: np.ndarray, valid: np.ndarray, target: float, perturbation: str,
                  in_mean: np.ndarray | None = None, moved: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float, float]:
    """Move a field so that its mean over some entries becomes ``target``.

    Parameters
    ----------
    old : numpy.ndarray
        The field, any shape.
    valid : numpy.ndarray of bool
        Entries that hold data; the others are returned unchanged.
    target : float
        The wanted mean.
    perturbation : {"multiplicative", "additive"}
        Multiply the valid entries by ``target / mean`` or add ``target - mean``.
    in_mean : numpy.ndarray of bool, optional
        Entries that enter the mean (with ``valid``); default every valid entry.
    moved : numpy.ndarray of bool, optional
        Entries that are moved (with ``valid``); default every valid entry.

    Returns
    -------
    new : numpy.ndarray
        float64, shape of ``old``.
    old_mean : float
    amount : float
        The factor or the shift.

    Raises
    ------
    ValueError
        No valid entry in the mean, or a multiplicative move of a field whose mean is 0.
    """
    old = np.asarray(old, dtype=np.float64)
    valid = np.asarray(valid, bool)
    use = valid if in_mean is None else valid & np.asarray(in_mean, bool)
    moved = valid if moved is None else valid & np.asarray(moved, bool)
    if not use.any():
        raise ValueError("no valid entry to take the mean over")
    mean = float(old[use].mean())
    new = old.copy()
    if use.sum() == 1 and moved.sum() == 1 and bool((use == moved).all()):
        new[moved] = target
        amount = target / mean if perturbation == "multiplicative" and mean != 0 else target - mean
        return new, mean, amount
    if perturbation == "multiplicative":
        if mean == 0:
            raise ValueError("cannot scale a field whose mean is 0 to a new mean")
        amount = target / mean
        new[moved] = old[moved] * amount
    else:
        amount = target - mean
        new[moved] = old[moved] + amount
    return new, mean, amount


def fortran_real(value: float) -> str:
    """A float as Fortran namelist text (shortest round-trip form, e.g. ``0.001``, ``1e-05``)."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"cannot write {value!r} into a Fortran namelist")
    return repr(value)


def _describe(edit: Edit, old_mean: float, amount: float, shape: tuple[int, ...]) -> str:
    where = str(edit.location)
    if not shape:
        return f"{where} = {edit.value:.6g} (was {old_mean:.6g})"
    how = f"x{amount:.6g}" if edit.perturbation == "multiplicative" else f"{amount:+.6g}"
    return f"{where} {how}: mean {old_mean:.6g} -> {edit.value:.6g}"


def _edit_file(path: Path, edits: list[Edit], what: str, *, entries, check_dims: bool):
    """New values and descriptions; ``entries(field) -> (in_mean, moved)`` masks."""
    fields = ctsm_files.read_fields(path, [e.location.variable for e in edits], what=what)
    new, notes = {}, {}
    for e in edits:
        f = fields[e.location.variable]
        if check_dims and f.dims != e.location.dims:
            raise InputFormatError(str(path), None, f"variable {e.location.variable} has dims {f.dims}; the "
                                   f"registry expects {e.location.dims} for {e.parameter}")
        in_mean, moved = entries(f)
        try:
            values, mean, amount = perturb_field(f.values, f.valid, e.value, e.perturbation, in_mean, moved)
        except ValueError as exc:
            raise InputFormatError(str(path), None, f"variable {e.location.variable}: {exc}") from exc
        new[e.location.variable] = values
        notes[e.parameter] = _describe(e, mean, amount, f.values.shape)
    return new, notes


def write_member_inputs(base_paramfile: str | Path | None, base_surfdata: str | Path | None,
                        values: Mapping[str, float], version: str, out_dir: str | Path, *,
                        registry: CtsmRegistry | None = None, pft_mean: Literal["all", "vegetated"] = "all",
                        cells: np.ndarray | None = None, overwrite: bool = False) -> MemberInputs:
    """Write one member's CTSM inputs into ``out_dir``.

    Parameters
    ----------
    base_paramfile : path-like or None
        The case's parameter file; needed when the member changes a ``param:`` parameter.
    base_surfdata : path-like or None
        The case's surface dataset; needed when the member changes a ``surfdata:`` parameter.
    values : mapping of str to float
        New spatial means of free registry parameters (see the module docstring).
    version : str
        CTSM layout or tag (:func:`~lsegeo.models.ctsm.parameters.layout_of`).
    out_dir : path-like
        The member's input folder; created, must not exist unless ``overwrite``.
    registry : CtsmRegistry, optional
        Default: the shipped registry.
    pft_mean : {"all", "vegetated"}
        Which PFT entries enter the mean of a per-PFT field (module docstring).
    cells : numpy.ndarray of bool, optional
        Grid cells of the surface dataset (its ``LONGXY`` shape) that belong to the basin;
        default every land cell.
    overwrite : bool
        Replace an existing ``out_dir``.

    Returns
    -------
    MemberInputs
        ``out_dir`` holds ``paramfile.nc`` and/or ``fsurdat.nc`` (edited copies, the input's
        netCDF format, a history line naming each change) and ``user_nl_clm`` (``paramfile =
        '...'``, ``fsurdat = '...'`` with absolute paths and one ``key = value`` line per
        namelist parameter).

    Raises
    ------
    ValueError
        A value outside its bounds, a bound parameter set directly, a base file missing for a
        parameter that needs it, a bad ``pft_mean``.
    InputFormatError
        A parameter file without a registry variable or with other dimensions, a surface dataset
        without ``LONGXY``/``LATIXY`` or the field to set; the file and variable are named.
    """
    if pft_mean not in ("all", "vegetated"):
        raise ValueError(f"pft_mean must be 'all' or 'vegetated', got {pft_mean!r}")
    layout = layout_of(version)
    edits = member_edits(values, layout, registry)
    by_kind = {k: [e for e in edits if e.location.kind == k] for k in ("param", "surfdata", "namelist")}
    bases = {"param": base_paramfile, "surfdata": base_surfdata}
    for kind, base in bases.items():
        if by_kind[kind] and base is None:
            names = ", ".join(e.parameter for e in by_kind[kind])
            raise ValueError(f"CTSM {layout}: {names} live(s) in the {kind} file, but no base {kind} file was given")
    out_dir = Path(out_dir).absolute()
    changes: dict[str, str] = {}
    new_param = new_surf = None
    if by_kind["param"]:
        def pft_entries(f):
            if pft_mean == "all" or "pft" not in f.dims:
                return None, None
            mask = np.ones(f.values.shape, bool)
            index = [slice(None)] * len(f.dims)
            index[f.dims.index("pft")] = 0
            mask[tuple(index)] = False
            return mask, None
        new_param, notes = _edit_file(Path(base_paramfile), by_kind["param"], "parameter file",
                                      entries=pft_entries, check_dims=True)
        changes.update(notes)
    if by_kind["surfdata"]:
        land = ctsm_files.surfdata_land_mask(base_surfdata)
        if cells is not None:
            cells = np.asarray(cells, bool)
            if cells.shape != land.shape:
                raise ValueError(f"cells has shape {cells.shape}, the surface dataset's grid {land.shape}")
            land = land & cells

        def land_cells(f):
            if f.values.shape != land.shape:
                raise InputFormatError(str(base_surfdata), None, f"field with dims {f.dims} is not on the "
                                       "grid of LONGXY")
            return land, land
        new_surf, notes = _edit_file(Path(base_surfdata), by_kind["surfdata"], "surface dataset",
                                     entries=land_cells, check_dims=False)
        changes.update(notes)
    for e in by_kind["namelist"]:
        changes[e.parameter] = f"{e.location} = {fortran_real(e.value)}"

    lines = [f"! lsegeo: CTSM {layout} member inputs"]
    paramfile = out_dir / PARAMFILE_NAME if new_param else None
    surfdata = out_dir / SURFDATA_NAME if new_surf else None
    with ctsm_files.atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for new, base, name, kind in ((new_param, base_paramfile, PARAMFILE_NAME, "param"),
                                      (new_surf, base_surfdata, SURFDATA_NAME, "surfdata")):
            if not new:
                continue
            said = "; ".join(changes[e.parameter] for e in by_kind[kind])
            line = history_line("ctsm member inputs", f"from {Path(base).name} (CTSM {layout}): {said}")
            ctsm_files.write_edited_copy(base, tmp / name, new, line)
        if paramfile is not None:
            lines.append(f"paramfile = '{paramfile}'")
        if surfdata is not None:
            lines.append(f"fsurdat = '{surfdata}'")
        lines += [f"{e.location.variable} = {fortran_real(e.value)}" for e in by_kind["namelist"]]
        write_text(tmp / USER_NL_NAME, "\n".join(lines) + "\n")
    log.info("CTSM %s member inputs in %s: %s", layout, out_dir, "; ".join(changes.values()))
    return MemberInputs(out_dir, paramfile, surfdata, tuple(lines), changes, layout)
