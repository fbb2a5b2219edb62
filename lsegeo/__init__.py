"""lsegeo: large-sample emulator calibration and regionalization of land/hydrology models.

The pipeline, one module (or subpackage) per step:

``ingest``      source files -> basins store (zarr v3): attributes, forcing, observed
``io``          readers of source formats, zarr stores, intake catalogs
``pet``         potential evapotranspiration
``summary``     figures and numbers of a store
``provenance``  CF/ACDD attributes, history, hashes, PROV-JSON
``cluster``     the dask cluster factory
"""

import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that wait for work sleep instead of spinning, in this process as in the dask
# workers (lsegeo.runtime.thread_environment); set before XGBoost or torch load their OpenMP
# runtime, which reads it once. On 2 cores shared with other busy processes, spinning made a
# 2-thread XGBoost fit 6x and a 2-thread torch MLP fit 30x slower than with this policy
# (docs/benchmarks.md, "OpenMP wait policy"). A value the user set is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    _late = [m for m in ("xgboost", "torch") if m in sys.modules]
    if _late:
        warnings.warn(f"{' and '.join(_late)} imported before lsegeo, so their OpenMP threads keep spinning "
                      "while they wait: set OMP_WAIT_POLICY=PASSIVE in the environment, or import lsegeo first "
                      "(fits on busy cores can be many times slower)", RuntimeWarning, stacklevel=2)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

try:
    __version__ = version("lsegeo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
