"""Process models and their adapters (see :mod:`lsegeo.models.protocol`)."""
