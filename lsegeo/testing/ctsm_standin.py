"""A stand-in for a CTSM case, for tests of the external-model launcher: ``python -m lsegeo.testing.ctsm_standin``.

It behaves like a CTSM case as far as lsegeo can see. It reads the member's inputs written by the
launcher (``--member-file``, the ``lsegeo_member.json`` of :func:`lsegeo.models.external.write_member_json`:
basin, member, parameters), the basin's ``prcp`` and ``pet`` from ``--basins-store`` over ``--start``
to ``--end``, skips 29 February (CTSM's noleap calendar has no such day), runs a two-store bucket
model (:func:`standin_runoff`) on the three grid cells of :data:`STANDIN_CELLS` and writes
``<output-dir>/<case>.clm2.h1.<YYYY>-01-01-00000.nc``, one daily history file per year in CTSM's
layout (:func:`lsegeo.io.ctsm_history.write_history_file`: ``time`` in ``days since`` with calendar
``noleap`` and ``time_bounds``, ``lndgrid`` cells with ``area`` and ``landfrac``, ``QRUNOFF``
float32 in mm/s). Its runoff depends on ``FMAX`` (share of rain running off at once) and
``baseflow_scalar`` (recession rate) and on the basin's forcing. Options: ``--fail-members``
(print 30 lines, exit with ``--exit-status``), ``--sleep``, ``--tally`` (one file per
invocation, counted by :func:`count_invocations`), and ``--case-inputs DIR``: read the two
parameters as CTSM would, from the CTSM inputs the launcher wrote there
(:func:`lsegeo.models.ctsm.launch.write_case_inputs`; :func:`case_input_values`) instead of the
member file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lsegeo.design import Parameter, ParameterSpace

__all__ = ["STANDIN_CELLS", "standin_space", "standin_runoff", "noleap_days", "standin_command",
           "count_invocations", "main"]

#: the stand-in's grid cells: area [km^2], land fraction, rain factor, centre
STANDIN_CELLS = {"area_km2": (120.0, 300.0, 80.0), "landfrac": (1.0, 0.9, 0.5), "rain_factor": (0.8, 1.0, 1.3),
                 "lon": (-70.1, -70.0, -69.9), "lat": (45.0, 45.1, 45.2)}


def standin_space() -> ParameterSpace:
    """The stand-in's two parameters, named and bounded as in the study's CTSM table."""
    return ParameterSpace((
        Parameter("FMAX", 0.1, 0.9, 0.381669399, units="1",
                  description="maximum fractional saturated area (stand-in: share of rain running off at once)"),
        Parameter("baseflow_scalar", 0.0005, 0.1, 0.001, scale="log", units="1",
                  description="baseflow scalar (stand-in: recession rate = min(0.5, 5 x value) per day)"),
    ), name="ctsm-standin")


def standin_runoff(values: Mapping[str, float], prcp: np.ndarray, pet: np.ndarray) -> np.ndarray:
    """Daily runoff [mm day-1] of the stand-in on its grid cells.

    Parameters
    ----------
    values : mapping of str to float
        ``FMAX`` and ``baseflow_scalar`` (defaults of :func:`standin_space` when absent).
    prcp, pet : numpy.ndarray
        ``(time,)`` basin precipitation and potential evaporation [mm day-1], on the days the
        model runs (noleap: no 29 February).

    Returns
    -------
    numpy.ndarray
        ``(time, cell)`` runoff [mm day-1], >= 0.
    """
    space = standin_space()
    fmax = float(values.get("FMAX", space["FMAX"].default))
    k = min(0.5, 5.0 * float(values.get("baseflow_scalar", space["baseflow_scalar"].default)))
    factor = np.asarray(STANDIN_CELLS["rain_factor"])
    store = np.full(factor.size, 50.0)
    out = np.empty((len(prcp), factor.size))
    for t in range(len(prcp)):
        rain = max(float(prcp[t]), 0.0) * factor
        quick = fmax * rain
        store += rain - quick
        store -= np.minimum(store, 0.6 * max(float(pet[t]), 0.0) * store / (store + 50.0))
        base = k * store
        store -= base
        out[t] = quick + base
    return out


def noleap_days(start, end) -> pd.DatetimeIndex:
    """The days from ``start`` to ``end`` that a noleap calendar has (every day but 29 February)."""
    days = pd.date_range(start, end, freq="D")
    return days[~((days.month == 2) & (days.day == 29))]


def standin_command(*, tally: str | None = None, fail_members: Sequence[int] = (), exit_status: int = 3,
                    sleep: float = 0.0, case_inputs: bool = False) -> list[str]:
    """The command template that runs the stand-in for one member (placeholders filled by the launcher).

    Parameters
    ----------
    tally : str, optional
        Folder where each invocation leaves a file ``<basin>_<member>_<unique>``.
    fail_members : sequence of int
        Members that print 30 lines and exit with ``exit_status`` instead of running.
    exit_status : int
        Their exit status.
    sleep : float
        Seconds each invocation sleeps before writing its output.
    case_inputs : bool
        Read the parameters from the CTSM case inputs (``{inputs_dir}`` of the CTSM inputs
        writer) rather than the member file.

    Returns
    -------
    list of str
    """
    cmd = [sys.executable, "-m", "lsegeo.testing.ctsm_standin", "--member-file", "{member_file}",
           "--basins-store", "{basins_store}", "--start", "{start}", "--end", "{end}",
           "--output-dir", "{output_dir}", "--case", "{case}"]
    if tally:
        cmd += ["--tally", str(tally)]
    if fail_members:
        cmd += ["--fail-members", ",".join(str(int(m)) for m in fail_members), "--exit-status", str(int(exit_status))]
    if sleep:
        cmd += ["--sleep", str(float(sleep))]
    if case_inputs:
        cmd += ["--case-inputs", "{inputs_dir}"]
    return cmd


def case_input_values(folder: str | Path) -> dict[str, float]:
    """``FMAX`` and ``baseflow_scalar`` as a CTSM case reads them from the inputs in ``folder``.

    ``FMAX``: the mean of the ``FMAX`` field of ``fsurdat.nc`` over its land cells
    (``LANDFRAC_PFT > 0``). ``baseflow_scalar``: its ``user_nl_clm`` line (CTSM 5.1) or the
    variable of ``paramfile.nc`` (5.3 and later). A parameter found in neither is left out.
    """
    import re

    import netCDF4

    folder = Path(folder)
    out: dict[str, float] = {}
    if (folder / "fsurdat.nc").exists():
        with netCDF4.Dataset(folder / "fsurdat.nc") as nc:
            fmax = np.ma.filled(np.ma.asarray(nc["FMAX"][...], dtype=np.float64), np.nan)
            land = (np.asarray(nc["LANDFRAC_PFT"][...]) > 0 if "LANDFRAC_PFT" in nc.variables
                    else np.ones_like(fmax, dtype=bool))
            out["FMAX"] = float(np.nanmean(fmax[land]))
    nl = (folder / "user_nl_clm").read_text() if (folder / "user_nl_clm").exists() else ""
    line = re.search(r"^\s*baseflow_scalar\s*=\s*([-+0-9.eEdD]+)", nl, flags=re.M)
    if line:
        out["baseflow_scalar"] = float(line.group(1).replace("d", "e").replace("D", "e"))
    elif (folder / "paramfile.nc").exists():
        with netCDF4.Dataset(folder / "paramfile.nc") as nc:
            if "baseflow_scalar" in nc.variables:
                out["baseflow_scalar"] = float(np.asarray(nc["baseflow_scalar"][...]).mean())
    return out


def count_invocations(tally: str | Path, basin: str, member: int) -> int:
    """How often the stand-in ran ``(basin, member)``, from the files it left in ``tally``."""
    return len(list(Path(tally).glob(f"{basin}_{int(member)}_*")))



def main(argv: list[str] | None = None) -> int:
    """Run the stand-in; returns the exit status."""
    ap = argparse.ArgumentParser(prog="ctsm_standin", description=__doc__)
    ap.add_argument("--member-file", required=True)
    ap.add_argument("--basins-store", required=True)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--case", default="standin")
    ap.add_argument("--tally")
    ap.add_argument("--fail-members", default="")
    ap.add_argument("--exit-status", type=int, default=3)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--case-inputs", help="read FMAX and baseflow_scalar from the CTSM inputs in this folder")
    args = ap.parse_args(argv)
    member = json.loads(Path(args.member_file).read_text(encoding="utf-8"))
    basin, m = str(member["basin"]), int(member["member"])
    if args.tally:
        Path(args.tally).mkdir(parents=True, exist_ok=True)
        (Path(args.tally) / f"{basin}_{m}_{uuid.uuid4().hex}").write_text(str(os.getpid()))
    print(f"stand-in case {args.case}: basin {basin}, member {m}, parameters {member['parameters']}", flush=True)
    if str(m) in [s for s in args.fail_members.split(",") if s]:
        for i in range(30):
            print(f"stand-in diagnostic line {i}", file=sys.stderr if i % 2 else sys.stdout, flush=True)
        print(f"ERROR: stand-in member {m} fails on purpose", file=sys.stderr, flush=True)
        return args.exit_status
    if args.sleep:
        time.sleep(args.sleep)

    import dask

    from lsegeo.io.ctsm_history import write_history_file
    from lsegeo.io.stores import open_store

    days = noleap_days(args.start, args.end)
    with dask.config.set(scheduler="synchronous"):
        forcing = open_store(args.basins_store, "forcing")[["prcp", "pet"]].sel(
            basin=basin, time=slice(args.start, args.end)).load()
    forcing = forcing.sel(time=days)
    values = dict(member["parameters"])
    if args.case_inputs:
        read = case_input_values(args.case_inputs)
        print(f"stand-in parameters from the case inputs in {args.case_inputs}: {read}", flush=True)
        values.update(read)
    q = standin_runoff(values, forcing["prcp"].values, forcing["pet"].values)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = dt.date.fromisoformat(args.start)
    for year in sorted(set(days.year)):
        sel = np.flatnonzero(days.year == year)
        first = days[sel[0]].date()
        write_history_file(out / f"{args.case}.clm2.h1.{year:04d}-01-01-00000.nc", start=first,
                           values_mm_s=q[sel] / 86400.0, reference=reference, area_km2=STANDIN_CELLS["area_km2"],
                           landfrac=STANDIN_CELLS["landfrac"], lon=STANDIN_CELLS["lon"], lat=STANDIN_CELLS["lat"],
                           case=args.case)
    print(f"wrote {len(set(days.year))} history file(s) of {len(days)} days to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
