"""Products: regionalized parameters written for users and for models, with their provenance.

* :mod:`~lsegeo.products.metadata`: CF-1.11/ACDD-1.3 metadata of a regionalized Dataset
  (:func:`annotate`, :func:`global_attrs`);
* :mod:`~lsegeo.products.maps`: parameter maps as a zarr store (the master) and netCDF
  (:func:`write_parameter_maps`);
* :mod:`~lsegeo.products.ctsm`: CTSM inputs from a product: per-basin case inputs, a surface
  dataset with the spatially varying fields set, a distributed-parameter stream file;
* :mod:`~lsegeo.products.lineage_report`: what a product was made from (:func:`lineage`,
  :func:`format_lineage`, for ``lsegeo provenance PRODUCT``).

``docs/products.md`` describes every product. The public names load on first use
(:func:`lsegeo.registry.lazy_exports`), so importing the package loads neither xarray nor netCDF4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsegeo.registry import lazy_exports

_EXPORTS = {
    "annotate": "lsegeo.products.metadata",
    "global_attrs": "lsegeo.products.metadata",
    "ParameterMaps": "lsegeo.products.maps",
    "write_parameter_maps": "lsegeo.products.maps",
    "check_product_name": "lsegeo.products.maps",
    "CtsmCases": "lsegeo.products.ctsm",
    "DistParamsStream": "lsegeo.products.ctsm",
    "write_ctsm_basin_cases": "lsegeo.products.ctsm",
    "write_ctsm_surfdata": "lsegeo.products.ctsm",
    "write_distparams_stream": "lsegeo.products.ctsm",
    "DISTRIBUTABLE": "lsegeo.products.ctsm",
    "lineage": "lsegeo.products.lineage_report",
    "format_lineage": "lsegeo.products.lineage_report",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from lsegeo.products.ctsm import DISTRIBUTABLE as DISTRIBUTABLE
    from lsegeo.products.ctsm import CtsmCases as CtsmCases
    from lsegeo.products.ctsm import DistParamsStream as DistParamsStream
    from lsegeo.products.ctsm import write_ctsm_basin_cases as write_ctsm_basin_cases
    from lsegeo.products.ctsm import write_ctsm_surfdata as write_ctsm_surfdata
    from lsegeo.products.ctsm import write_distparams_stream as write_distparams_stream
    from lsegeo.products.lineage_report import format_lineage as format_lineage
    from lsegeo.products.lineage_report import lineage as lineage
    from lsegeo.products.maps import ParameterMaps as ParameterMaps
    from lsegeo.products.maps import check_product_name as check_product_name
    from lsegeo.products.maps import write_parameter_maps as write_parameter_maps
    from lsegeo.products.metadata import annotate as annotate
    from lsegeo.products.metadata import global_attrs as global_attrs

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
