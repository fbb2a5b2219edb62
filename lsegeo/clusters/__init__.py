"""Cluster kinds beyond the local and HPC ones, and what every lsegeo cluster does on its workers.

* :mod:`~lsegeo.clusters.kubernetes` -- kind ``kubernetes``: the dask-kubernetes operator's
  ``KubeCluster`` (extra ``kubernetes``);
* :mod:`~lsegeo.clusters.gateway` -- kind ``gateway``: a cluster of a dask-gateway server (extra
  ``gateway``);
* :mod:`~lsegeo.clusters.coiled` -- kind ``coiled``: a Coiled cluster (extra ``coiled``);
* :mod:`~lsegeo.clusters.threads` -- the worker plugin that keeps XGBoost's, BLAS's and torch's
  thread pools within each worker's threads, registered on every cluster by
  :func:`lsegeo.parallel.dask_client`.

Each kind's module imports its package at the top: :data:`lsegeo.parallel.CLUSTER_KINDS` imports
the module only when that kind is chosen, and a missing package then raises
:class:`~lsegeo.errors.MissingDependencyError` naming the extra. Each also has a pure function
that turns the settings into what its cluster class receives (a resource spec, a gateway and its
options, keyword arguments), checked without contacting any cloud.
"""
