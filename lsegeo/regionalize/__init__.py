"""Regionalization: carrying what was learnt in gauged basins to unseen basins and grid cells.

* :mod:`~lsegeo.regionalize.folds`: spatial fold schemes (:data:`SPATIAL_FOLD_SCHEMES`:
  ``study``, ``pub``, ``pur``, ``flood_cluster``) that hold basins out to test a method on
  basins it has not seen;
* :mod:`~lsegeo.regionalize.selection`: regionalization by selection (``lse-select``): the
  ensemble member that a large-sample emulator ranks best for a basin from its attributes, and
  its spatial cross-validation (:func:`held_out_selection`).

The public names load on first use (:func:`lsegeo.registry.lazy_exports`), so importing the
package loads neither xarray nor an emulator library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsegeo.registry import lazy_exports

_EXPORTS = {
    "SPATIAL_FOLD_SCHEMES": "lsegeo.regionalize.folds",
    "PUR_REGION_GROUPS": "lsegeo.regionalize.folds",
    "SpatialFolds": "lsegeo.regionalize.folds",
    "make_folds": "lsegeo.regionalize.folds",
    "huc02_codes": "lsegeo.regionalize.folds",
    "read_flood_clusters": "lsegeo.regionalize.folds",
    "Candidates": "lsegeo.regionalize.selection",
    "Selection": "lsegeo.regionalize.selection",
    "HeldOut": "lsegeo.regionalize.selection",
    "candidate_sets": "lsegeo.regionalize.selection",
    "select_best": "lsegeo.regionalize.selection",
    "lse_select": "lsegeo.regionalize.selection",
    "actual_scores": "lsegeo.regionalize.selection",
    "held_out_selection": "lsegeo.regionalize.selection",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from lsegeo.regionalize.folds import PUR_REGION_GROUPS as PUR_REGION_GROUPS
    from lsegeo.regionalize.folds import SPATIAL_FOLD_SCHEMES as SPATIAL_FOLD_SCHEMES
    from lsegeo.regionalize.folds import SpatialFolds as SpatialFolds
    from lsegeo.regionalize.folds import huc02_codes as huc02_codes
    from lsegeo.regionalize.folds import make_folds as make_folds
    from lsegeo.regionalize.folds import read_flood_clusters as read_flood_clusters
    from lsegeo.regionalize.selection import Candidates as Candidates
    from lsegeo.regionalize.selection import HeldOut as HeldOut
    from lsegeo.regionalize.selection import Selection as Selection
    from lsegeo.regionalize.selection import actual_scores as actual_scores
    from lsegeo.regionalize.selection import candidate_sets as candidate_sets
    from lsegeo.regionalize.selection import held_out_selection as held_out_selection
    from lsegeo.regionalize.selection import lse_select as lse_select
    from lsegeo.regionalize.selection import select_best as select_best

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
