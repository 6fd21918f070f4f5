"""Extract and load: one module per source, each with the same small surface.

A source finds what is new (``discover``), fetches bytes (``fetch``) and parses them to a
table (``parse``). Parsing is a pure function of the bytes; I/O stays at the edges
(``ingest.http`` for the network, ``ingest.landing`` for files, ``ingest.load`` for DuckDB).
"""
