"""CTSM case inputs as the inputs writer of the external-model launcher.

:func:`write_case_inputs` is an *inputs writer* for :mod:`lsegeo.models.external`: set
``inputs_writer = "lsegeo.models.ctsm.launch:write_case_inputs"`` and ``writer_options`` to the
case's base files and CTSM version, and every member's folder gets, besides
``lsegeo_member.json``, an ``inputs/`` folder with the edited parameter file, surface dataset and
``user_nl_clm`` lines (:func:`lsegeo.models.ctsm.inputs.write_member_inputs`). Their paths become
the command template's ``{paramfile}``, ``{fsurdat}``, ``{user_nl_clm}`` and ``{inputs_dir}``
placeholders (an empty string where the member changes nothing in that file).

The base files may name one file per basin with ``{basin}`` (``surfdata_{basin}.nc``), as the
case inputs of :func:`lsegeo.calibration.hpc.propose_hpc_iteration` do. The launcher passes the
ensemble store's parameter bounds (``bounds``), so a store sampled on wider ranges than the
registry's calibration bounds (the study's sensitivity ranges, an ingested ensemble) has its
members written, checked against the store's own bounds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lsegeo.models.ctsm.inputs import write_member_inputs
from lsegeo.models.external import write_member_json

__all__ = ["INPUTS_DIR", "write_case_inputs"]

#: the sub-folder of a member's folder holding its CTSM inputs
INPUTS_DIR = "inputs"


def write_case_inputs(folder: str | os.PathLike, *, basin: str, member: int, values: Mapping[str, float],
                      version: str, base_paramfile: str | None = None, base_surfdata: str | None = None,
                      pft_mean: str = "all", bounds: Mapping[str, Sequence[float]] | None = None
                      ) -> dict[str, str]:
    """Write one member's CTSM inputs into ``folder/inputs`` (and its values as JSON).

    Parameters
    ----------
    folder : path-like
        The member's folder.
    basin : str
        Gauge id.
    member : int
        Member index.
    values : mapping of str to float
        New spatial means of registry parameters.
    version : str
        CTSM layout or tag (5.1, 5.3, 5.4, ...).
    base_paramfile, base_surfdata : str, optional
        The case's base parameter file and surface dataset; ``{basin}`` in a path is replaced by
        the gauge id.
    pft_mean : {"all", "vegetated"}
        Which PFT entries enter the mean of a per-PFT field.
    bounds : mapping of str to (float, float), optional
        ``name -> (lower, upper)`` the values are checked against instead of the registry's
        calibration bounds (the launcher passes the ensemble store's).

    Returns
    -------
    dict
        ``member_file``, ``inputs_dir``, ``paramfile``, ``fsurdat``, ``user_nl_clm`` (paths;
        ``""`` for a file the member does not change).

    Raises
    ------
    ValueError, lsegeo.errors.InputFormatError
        As :func:`lsegeo.models.ctsm.inputs.write_member_inputs` (a value out of bounds, a file
        without the variable, ...); the launcher records the member as failed.
    """
    from lsegeo.models.ctsm.parameters import load_registry

    paths = write_member_json(folder, basin=basin, member=member, values=values, version=version)
    registry = load_registry().with_bounds(bounds, "the ensemble store") if bounds else None
    written = write_member_inputs(base_paramfile and base_paramfile.format(basin=basin),
                                  base_surfdata and base_surfdata.format(basin=basin), values, version,
                                  Path(folder) / INPUTS_DIR, registry=registry, pft_mean=pft_mean, overwrite=True)
    return {**paths, "inputs_dir": str(written.directory),
            "paramfile": str(written.paramfile or ""), "fsurdat": str(written.surfdata or ""),
            "user_nl_clm": str(written.directory / "user_nl_clm")}
