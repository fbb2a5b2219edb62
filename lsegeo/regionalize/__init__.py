"""Regionalization: carrying what was learnt in gauged basins to unseen basins and grid cells.

* :mod:`~lsegeo.regionalize.training`: what a method learns from (the calibrated basins, their
  attributes and calibrated sets, the emulators fitted on them only);
* :mod:`~lsegeo.regionalize.methods`: the methods (:data:`METHODS`: ``default``,
  ``donor-nearest``, ``donor-similar``, ``lse-select``, ``lse-optimise``, ``lse-amortised``) and
  :func:`regionalize`; :mod:`~lsegeo.regionalize.donors` (spatial and attribute-space donors),
  :mod:`~lsegeo.regionalize.search` (``lse-optimise``: the GA on the emulator in a trust region),
  :mod:`~lsegeo.regionalize.amortised` (the attributes -> parameters network),
  :mod:`~lsegeo.regionalize.selection` (selection among simulated members and its
  cross-validation on an ensemble run elsewhere);
* :mod:`~lsegeo.regionalize.domains`: the targets (basins, a table, a regular grid, a CTSM
  surface dataset's grid), with :mod:`~lsegeo.regionalize.rasterize` (CAMELS attributes on a
  grid) and :mod:`~lsegeo.regionalize.applicability` (distance to the training basins);
* :mod:`~lsegeo.regionalize.folds` (fold schemes ``study``, ``pub``, ``pur``,
  ``flood_cluster``) and :mod:`~lsegeo.regionalize.crossval` (spatial cross-validation with real
  runs, the score intervals' calibration and coverage; :mod:`~lsegeo.regionalize.conformal`);
* :mod:`~lsegeo.regionalize.assemble` (a regionalization in the products' layout) and
  :mod:`~lsegeo.regionalize.evaluate` (a product scored against observed streamflow).

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
    "RegionalizeSettings": "lsegeo.regionalize.settings",
    "NLDAS_CONUS": "lsegeo.regionalize.settings",
    "Training": "lsegeo.regionalize.training",
    "load_training": "lsegeo.regionalize.training",
    "fit_emulators": "lsegeo.regionalize.training",
    "METHODS": "lsegeo.regionalize.methods",
    "Context": "lsegeo.regionalize.methods",
    "Targets": "lsegeo.regionalize.methods",
    "RegionalResult": "lsegeo.regionalize.methods",
    "regionalize": "lsegeo.regionalize.methods",
    "Domain": "lsegeo.regionalize.domains",
    "basins_domain": "lsegeo.regionalize.domains",
    "table_domain": "lsegeo.regionalize.domains",
    "grid_domain": "lsegeo.regionalize.domains",
    "camels_grid_domain": "lsegeo.regionalize.domains",
    "regular_grid": "lsegeo.regionalize.rasterize",
    "surfdata_grid": "lsegeo.regionalize.rasterize",
    "camels_grid_attributes": "lsegeo.regionalize.rasterize",
    "Applicability": "lsegeo.regionalize.applicability",
    "AmortisedRegionalizer": "lsegeo.regionalize.amortised",
    "ScoreIntervals": "lsegeo.regionalize.conformal",
    "coverage": "lsegeo.regionalize.conformal",
    "CrossValidation": "lsegeo.regionalize.crossval",
    "spatial_crossvalidation": "lsegeo.regionalize.crossval",
    "interval_coverage": "lsegeo.regionalize.crossval",
    "product_dataset": "lsegeo.regionalize.assemble",
    "evaluate_parameters": "lsegeo.regionalize.evaluate",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from lsegeo.regionalize.amortised import AmortisedRegionalizer as AmortisedRegionalizer
    from lsegeo.regionalize.applicability import Applicability as Applicability
    from lsegeo.regionalize.assemble import product_dataset as product_dataset
    from lsegeo.regionalize.conformal import ScoreIntervals as ScoreIntervals
    from lsegeo.regionalize.conformal import coverage as coverage
    from lsegeo.regionalize.crossval import CrossValidation as CrossValidation
    from lsegeo.regionalize.crossval import interval_coverage as interval_coverage
    from lsegeo.regionalize.crossval import spatial_crossvalidation as spatial_crossvalidation
    from lsegeo.regionalize.domains import Domain as Domain
    from lsegeo.regionalize.domains import basins_domain as basins_domain
    from lsegeo.regionalize.domains import camels_grid_domain as camels_grid_domain
    from lsegeo.regionalize.domains import grid_domain as grid_domain
    from lsegeo.regionalize.domains import table_domain as table_domain
    from lsegeo.regionalize.evaluate import evaluate_parameters as evaluate_parameters
    from lsegeo.regionalize.folds import PUR_REGION_GROUPS as PUR_REGION_GROUPS
    from lsegeo.regionalize.folds import SPATIAL_FOLD_SCHEMES as SPATIAL_FOLD_SCHEMES
    from lsegeo.regionalize.folds import SpatialFolds as SpatialFolds
    from lsegeo.regionalize.folds import huc02_codes as huc02_codes
    from lsegeo.regionalize.folds import make_folds as make_folds
    from lsegeo.regionalize.folds import read_flood_clusters as read_flood_clusters
    from lsegeo.regionalize.methods import METHODS as METHODS
    from lsegeo.regionalize.methods import Context as Context
    from lsegeo.regionalize.methods import RegionalResult as RegionalResult
    from lsegeo.regionalize.methods import Targets as Targets
    from lsegeo.regionalize.methods import regionalize as regionalize
    from lsegeo.regionalize.rasterize import camels_grid_attributes as camels_grid_attributes
    from lsegeo.regionalize.rasterize import regular_grid as regular_grid
    from lsegeo.regionalize.rasterize import surfdata_grid as surfdata_grid
    from lsegeo.regionalize.selection import Candidates as Candidates
    from lsegeo.regionalize.selection import HeldOut as HeldOut
    from lsegeo.regionalize.selection import Selection as Selection
    from lsegeo.regionalize.selection import actual_scores as actual_scores
    from lsegeo.regionalize.selection import candidate_sets as candidate_sets
    from lsegeo.regionalize.selection import held_out_selection as held_out_selection
    from lsegeo.regionalize.selection import lse_select as lse_select
    from lsegeo.regionalize.selection import select_best as select_best
    from lsegeo.regionalize.settings import NLDAS_CONUS as NLDAS_CONUS
    from lsegeo.regionalize.settings import RegionalizeSettings as RegionalizeSettings
    from lsegeo.regionalize.training import Training as Training
    from lsegeo.regionalize.training import fit_emulators as fit_emulators
    from lsegeo.regionalize.training import load_training as load_training

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
