"""The marts: monthly aggregates built incrementally in the lake (`aggregates`), then one DuckDB file
published atomically (`publish`)."""
