"""The command group ``lsegeo`` and what its commands share (error reporting, dates, the call line)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shlex
import sys

import click

from lsegeo import __version__
from lsegeo.errors import LsegeoError

__all__ = ["main", "DATE", "call_line", "date_range"]


class _Failure(click.ClickException):
    """One of lsegeo's own errors, shown as its message alone."""

    exit_code = 2


class _Group(click.Group):
    """The command group that reports lsegeo's own errors.

    Every :class:`~lsegeo.errors.LsegeoError` raised by a command (bad configuration, unknown
    name, missing optional package, missing or malformed input, ...) becomes one message on
    standard error and exit status 2, without a traceback.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LsegeoError as err:
            raise _Failure(str(err)) from err


def call_line() -> str:
    """The command line as run, for the ``history`` of what a command writes."""
    return "lsegeo " + " ".join(shlex.quote(a) for a in sys.argv[1:])


class _Date(click.ParamType):
    """A calendar day written YYYY-MM-DD; anything else is one message naming the option and value."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx) -> dt.date:  # noqa: D102 (click.ParamType's)
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError("expected a date written YYYY-MM-DD")
            return dt.date.fromisoformat(text)
        except ValueError as err:
            self.fail(f"{value!r} is not a date: {err}", param, ctx)


DATE = _Date()


def date_range(start: dt.date | None, end: dt.date | None) -> None:
    """Refuse ``--end`` before ``--start`` (both given) as a usage error naming both."""
    if start is not None and end is not None and end < start:
        raise click.BadParameter(f"{end} is before --start {start}", param_hint="'--end'")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lsegeo")
@click.option("--verbose", "-v", is_flag=True, help="Log debug messages too.")
@click.option("--quiet", "-q", is_flag=True, help="Log warnings and errors only.")
def main(verbose: bool, quiet: bool) -> None:
    """lsegeo: calibrate land/hydrology models over many basins with a large-sample emulator.

    \b
    Pipeline steps, each a command:
      ingest    source files -> basins store (zarr v3): attributes, forcing, observed
      ensemble  run a design of model members over basins -> ensemble store (resumable)
      calibrate the emulator loop: fit LSE/SSE, optimise, run proposals, repeat (resumable)
      sensitivity Sobol' S1/ST of the score to each parameter, per basin, on the LSE
      direct    calibrate every basin by DDS on the model itself (the reference optimum)
      launch    run an ensemble store's pending members as external jobs (CTSM via CIME, ...)
      propose   the next iteration on the LSE as CTSM case inputs + manifest (HPC); collect scores it
      compare   calibrations side by side: median best scores with bootstrap intervals, CDFs
      regionalize parameters for basins and grid cells never calibrated -> products (zarr, netCDF,
                CTSM files) with provenance; crossval measures the methods on held-out basins
      evaluate  run a basin product with the model and score it against observed streamflow
      provenance the lineage of a product: inputs with hashes, configuration, emulator, steps
      summary   what a basins store holds, in numbers and a figure
      catalog   register stores in an intake 2 catalog, list its entries
      demo      the main job end to end on the embedded defaults
      info      where data is looked for, and the versions in use

    Input data is found through --data-dir, the data_dir config key, the LSEGEO_DATA_DIR
    environment variable, or ../shared/data; outputs go to LSEGEO_WORK_DIR or ./work, and the
    intake catalog of the products is <work dir>/catalog.yaml. Progress messages go to standard
    error (-v: more, -q: warnings only); errors are one message and exit status 2.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.runtime import configure_logging

    configure_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
