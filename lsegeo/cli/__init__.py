"""The ``lsegeo`` command line: a thin layer over the library (no logic of its own).

Run ``lsegeo --help`` or ``lsegeo COMMAND --help``. The group and what its commands share are in
:mod:`lsegeo.cli.base`; the commands in :mod:`lsegeo.cli.commands` (the calibration half) and
:mod:`lsegeo.cli.regionalize` (regionalization and products) and :mod:`lsegeo.cli.data` (input
data: ``data fetch``). Importing this package registers
them all.
"""

from __future__ import annotations

from lsegeo.cli import commands as _commands  # noqa: F401 (registers the commands)
from lsegeo.cli import data as _data  # noqa: F401 (registers the commands)
from lsegeo.cli import regionalize as _regionalize  # noqa: F401 (registers the commands)
from lsegeo.cli.base import main
from lsegeo.cli.commands import _labelled, _power_of_two

__all__ = ["main", "_labelled", "_power_of_two"]
