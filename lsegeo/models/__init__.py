"""Process models.

The adapter protocol and its batch runner (:mod:`~lsegeo.models.protocol`), the registry of
adapters (:mod:`~lsegeo.models.registry`) and the embedded HBV model (:mod:`~lsegeo.models.hbv`).
"""
