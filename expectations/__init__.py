"""Great Expectations suites (``suites/*.json``, versioned here) and the code that runs them.

``expectations.audit`` runs a suite on a frame read from a DuckDB file through a read-only
connection; ``expectations.frontex`` and ``expectations.eurostat`` say which frames and
parameters each source's checks use; ``expectations.suites_by_stage`` lists them all by stage.
"""
