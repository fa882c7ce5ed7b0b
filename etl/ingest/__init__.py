"""Ingestion: landing files -> raw Parquet, quarantine and manifest.

`files` reads a landing file's bytes (hash, gunzip, UTF-8), `rows` checks its rows in DuckDB, `run` drives
a whole ingestion under the data home's lock.
"""
