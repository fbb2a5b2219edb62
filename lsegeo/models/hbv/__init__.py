"""The embedded HBV model.

The numba kernel (:mod:`~lsegeo.models.hbv.kernel`), its drivers (:mod:`~lsegeo.models.hbv.simulate`),
the numpy reference (:mod:`~lsegeo.models.hbv.reference`) and the adapter with its batch runner
(:mod:`~lsegeo.models.hbv.adapter`).
"""
