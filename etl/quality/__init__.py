"""Data quality: Great Expectations suites run against each stage's output, results kept in the lake."""
