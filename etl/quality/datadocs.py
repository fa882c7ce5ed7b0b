"""GX Data Docs: the HTML pages of a stage's latest check, under `<home>/docs/gx/<stage>/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etl.lock import data_home_lock
from etl.quality import gx_duckdb
from etl.settings import Settings


def docs_dir(settings: Settings, stage: str) -> Path:
    """Where a stage's GX Data Docs go (the latest check of that stage)."""
    return settings.docs / "gx" / stage


def build_data_docs(settings: Settings, stage: str, context: Any) -> None:
    """Write the Data Docs of the validations run in `context`. Raises LockError after 10 minutes of
    waiting for another check of the same stage to finish its docs."""
    # Ingestion DAGs of several source families may check the raw stage at the same time.
    with (
        data_home_lock(settings, f"gx-docs-{stage}", wait=600),
        gx_duckdb.compiled_templates_kept(settings.home / "tmp" / "gx-templates"),
    ):
        context.build_data_docs(site_names=[gx_duckdb.DOCS_SITE])
