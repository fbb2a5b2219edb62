"""CTSM, the Community Terrestrial Systems Model, run on HPC through CIME; lsegeo owns what is around it.

* :mod:`~lsegeo.models.ctsm.parameters`: the parameter registry, a table shipped as package data
  (``lsegeo/data/ctsm_parameters.csv``) and validated when it is loaded: meaning, units,
  default, bounds, scale, perturbation, binding, and where each CTSM layout (5.1, 5.3, 5.4)
  reads every parameter;
* :mod:`~lsegeo.models.ctsm.inputs`: one member's inputs, an edited parameter file, surface
  dataset and ``user_nl_clm`` lines (netCDF access in :mod:`lsegeo.io.ctsm_files`);
* :mod:`~lsegeo.models.ctsm.history`: CTSM daily history runoff (``QRUNOFF`` mm/s, noleap) to
  basin runoff in mm/day on the observation days (file reading in :mod:`lsegeo.io.ctsm_history`);
* :mod:`~lsegeo.models.ctsm.launch`: the member inputs above as the inputs writer of the
  external-model launcher (:mod:`lsegeo.models.external`, :mod:`lsegeo.ensembles.external`).
* :mod:`~lsegeo.models.ctsm.adapter`: the model adapter ``ctsm`` (its parameter space from the
  registry; external: ``lsegeo ensemble`` creates its members pending, ``lsegeo launch`` runs them).

See ``docs/ctsm.md``.
"""
