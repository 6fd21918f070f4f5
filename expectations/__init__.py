"""Great Expectations suites and the code that runs them.

``expectations.audit`` runs a suite on a frame read from a DuckDB file through a read-only
connection. Each source folder's ``checks.py`` says which frames and parameters its checks use
(its suites in ``suites/`` beside it); ``expectations.funding`` and ``expectations.readmission``
do so for the marts built from several sources (suites in ``expectations/suites``);
``expectations.suites_by_stage`` lists them all by stage.
"""
