"""Parameter screening: global sensitivity of the score to each parameter, per basin.

As the study did before calibrating (Tang, Wood & Swenson 2025), the sensitivity of a basin's
score to each parameter is computed cheaply on the fitted large-sample emulator, checked against
the iteration-0 ensemble, aggregated over clusters of basins, and turned into a selection of the
parameters to calibrate. One idea per module:

* :mod:`~lsegeo.sensitivity.sobol` -- Sobol' ``S1``/``ST`` on an emulator (SALib), all basins on
  one Saltelli sample;
* :mod:`~lsegeo.sensitivity.given_data` -- first-order indices from a given sample, estimators
  chosen by name in :data:`~lsegeo.sensitivity.given_data.ESTIMATORS` (RBD-FAST, binned);
* :mod:`~lsegeo.sensitivity.ensemble` -- those estimators on an ensemble's members, and the
  check of an emulator's indices against them;
* :mod:`~lsegeo.sensitivity.agreement` -- the agreement of two sets of indices per basin;
* :mod:`~lsegeo.sensitivity.clusters` -- the flood-generation clusters of Brunner et al. (2020);
* :mod:`~lsegeo.sensitivity.selection` -- the parameters carrying a share (85 %) of the summed
  first-order sensitivity;
* :mod:`~lsegeo.sensitivity.store` -- the sensitivity product (zarr, with provenance);
* :mod:`~lsegeo.sensitivity.indices` -- coercion and normalisation of index arrays;
* :mod:`~lsegeo.sensitivity.settings` -- the defaults.

The figures are in :mod:`lsegeo.plots.sensitivity`, the ``lsegeo sensitivity`` command in
:mod:`lsegeo.workflows.sensitivity`.

The names below are imported on first use, so ``import lsegeo.sensitivity.settings`` (as the
configuration does) loads neither xarray nor SALib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsegeo.registry import lazy_exports

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "CLUSTERS_FILE": "lsegeo.sensitivity.clusters",
    "ESTIMATORS": "lsegeo.sensitivity.given_data",
    "SensitivitySettings": "lsegeo.sensitivity.settings",
    "aggregate_by_cluster": "lsegeo.sensitivity.clusters",
    "check_against_ensemble": "lsegeo.sensitivity.ensemble",
    "compare_indices": "lsegeo.sensitivity.agreement",
    "first_order_given_data": "lsegeo.sensitivity.given_data",
    "format_agreement": "lsegeo.sensitivity.agreement",
    "format_selection": "lsegeo.sensitivity.selection",
    "normalise_indices": "lsegeo.sensitivity.indices",
    "read_clusters": "lsegeo.sensitivity.clusters",
    "read_sensitivity": "lsegeo.sensitivity.store",
    "select_parameters": "lsegeo.sensitivity.selection",
    "sensitivity_from_ensemble": "lsegeo.sensitivity.ensemble",
    "sobol_on_emulator": "lsegeo.sensitivity.sobol",
    "write_sensitivity": "lsegeo.sensitivity.store",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from lsegeo.sensitivity.agreement import compare_indices, format_agreement  # noqa: F401
    from lsegeo.sensitivity.clusters import CLUSTERS_FILE, aggregate_by_cluster, read_clusters  # noqa: F401
    from lsegeo.sensitivity.ensemble import check_against_ensemble, sensitivity_from_ensemble  # noqa: F401
    from lsegeo.sensitivity.given_data import ESTIMATORS, first_order_given_data  # noqa: F401
    from lsegeo.sensitivity.indices import normalise_indices  # noqa: F401
    from lsegeo.sensitivity.selection import format_selection, select_parameters  # noqa: F401
    from lsegeo.sensitivity.settings import SensitivitySettings  # noqa: F401
    from lsegeo.sensitivity.sobol import sobol_on_emulator  # noqa: F401
    from lsegeo.sensitivity.store import read_sensitivity, write_sensitivity  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
