"""GX Data Docs: the HTML pages of a stage's latest check, under `<home>/docs/gx/<stage>/`.

Great Expectations' pages load Bootstrap, jQuery and the table scripts from public CDNs; on a closed
network they would show unstyled, with an empty list of results. After each build the pages are pointed
at copies kept in the site itself (`static/vendor/`, from `datadocs_assets/`, licences included).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from etl.lock import data_home_lock
from etl.quality import gx_duckdb
from etl.settings import Settings

ASSETS = Path(__file__).with_name("datadocs_assets")
VENDOR = Path("static") / "vendor"

# Every CDN address of GX's page templates: the local file it becomes, or "" to drop the tag (the dark
# theme, and Vega, which only profiling pages use).
LOCAL = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "icons.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "",
    "https://cdn.jsdelivr.net/npm/vega@5": "",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "",
}
LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/(logo-long|full_logo_dark)\.png"
    r"[^\"')]*"
)
STATIC = re.compile(r"=\"(?:\.\./|\./)*static/")
CORS = re.compile(r"\s(?:integrity|crossorigin)(?:=\"[^\"]*\")?")
TAG = re.compile(r"<(?:link|script)\b[^>]*?(?:href|src)=\"(https://[^\"]+)\"[^>]*>(?:\s*</script>)?")


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
        use_local_assets(docs_dir(settings, stage))


def use_local_assets(site: Path) -> int:
    """Copy the assets into `site` and point every page of it at them; returns the pages changed."""
    vendor = site / VENDOR
    shutil.copytree(ASSETS, vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    changed = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        local = localized(text, Path(os.path.relpath(site, page.parent)))
        if local != text:
            page.write_text(local, encoding="utf-8")
            changed += 1
    return changed


def localized(html: str, to_site: Path) -> str:
    """`html` with its CDN tags pointing at the site's own copies (`to_site`: the page's way to the site
    root); tags of unknown CDN addresses are left as they are."""

    def local_tag(match: re.Match[str]) -> str:
        name = LOCAL.get(match.group(1))
        if name is None:
            return match.group(0)
        if not name:
            return ""
        tag = match.group(0).replace(match.group(1), (to_site / VENDOR / name).as_posix())
        return CORS.sub("", tag)  # a file:// page may not load a script it marks cross-origin

    html = TAG.sub(local_tag, html)
    html = STATIC.sub(f'="{(to_site / "static").as_posix()}/', html)  # GX's favicon misses a level
    return LOGO.sub((to_site / "static" / "images" / "logo-long.png").as_posix(), html)
