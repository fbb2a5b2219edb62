"""lsegeo: large-sample emulator calibration and regionalization of land/hydrology models.

The pipeline, one module (or subpackage) per step:

``ingest``      source files -> basins store (zarr v3): attributes, forcing, observed
``io``          readers of source formats, zarr stores, intake catalogs
``pet``         potential evapotranspiration
``summary``     figures and numbers of a store
``provenance``  CF/ACDD attributes, history, hashes, PROV-JSON
``cluster``     the dask cluster factory
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lsegeo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
