"""Data quality: Great Expectations suites run against each stage's output, results kept in the lake.

`suites` reads expectations/<stage>/*.json, `prepare` builds the tables they check (business queries in
sql/checks/), `validate` runs GX, `results` writes the result rows, `datadocs` the HTML pages, `gx_duckdb`
holds every GX patch; `run.check` does one stage's check, in that order.
"""

from etl.quality.results import QualityReport
from etl.quality.run import check

__all__ = ["QualityReport", "check"]
