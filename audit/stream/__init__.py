"""Streaming execution: an eval table read batch by batch, additive tables, a seeded sample.

:mod:`audit.stream.batches` reads Parquet row groups and CSV blocks, :mod:`audit.stream.partials`
keeps the tables metrics are functions of, :mod:`audit.stream.run` runs a suite over them
(``settings.engine: stream``).
"""
