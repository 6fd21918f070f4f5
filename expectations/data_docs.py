"""Great Expectations Data Docs that render offline.

GX's Data Docs pages load Bootstrap, jQuery, Font Awesome, bootstrap-table, Vega and more from
CDNs: an analyst without network sees an unstyled page. ``make_offline`` ships what the pages
need from Python packages pinned in requirements.txt (XStatic-Bootstrap, XStatic-jQuery,
XStatic-Font-Awesome) into ``<site>/static/vendor/``, points the pages at those copies, and
removes the remaining external stylesheets and scripts (bootstrap-table's filter extension and
styles, the date picker, the dark theme and Vega: sorting widgets and charts the validation
pages do not need). bootstrap-table itself, which fills the index pages' tables, is replaced by
a small stand-in of this project (``expectations/static/bootstrap-table-offline.js``); the
shipped tags lose their ``integrity`` and ``crossorigin`` attributes (the bytes differ from the
CDN's, and Chromium blocks a crossorigin script on file://). GX's logo, fetched from its web assets, is pointed at the copy GX ships in
``static/images``. Links the reader may click (to greatexpectations.io) stay.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import xstatic.pkg.bootstrap as bootstrap
import xstatic.pkg.font_awesome as font_awesome
import xstatic.pkg.jquery as jquery

# CDN address (prefix) -> file under static/vendor, for what the pages need.
SHIPPED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        "bootstrap/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        "bootstrap/js/bootstrap.bundle.min.js",  # the bundle includes Popper
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "fontawesome/css/all.min.css",
    # bootstrap-table builds the index pages' tables from the data in the page: without it
    # they stay empty. This project's small stand-in (expectations/static) fills them.
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/bootstrap-table-offline.js",
}
TABLE_STAND_IN = Path(__file__).with_name("static") / "bootstrap-table-offline.js"
INTEGRITY = re.compile(r"""\s+(?:integrity|crossorigin)=["'][^"']*["']""", re.IGNORECASE)
"""Subresource integrity and CORS mode of the CDN tags: the shipped files differ from the CDN's
bytes, and Chromium blocks a ``crossorigin`` script on file:// (CORS)."""
EXTERNAL_TAG = re.compile(
    r"""<script\b[^>]*\bsrc=["'](https?://[^"']+)["'][^>]*>\s*</script>"""
    r"""|<link\b[^>]*\bhref=["'](https?://[^"']+)["'][^>]*/?>"""
    r"""|<img\b[^>]*\bsrc=["'](https?://[^"']+)["'][^>]*/?>""", re.IGNORECASE)


def _vendor(target: Path) -> None:
    copies = {
        target / "bootstrap" / "css": Path(bootstrap.BASE_DIR) / "css",
        target / "bootstrap" / "js": Path(bootstrap.BASE_DIR) / "js",
        target / "jquery": Path(jquery.BASE_DIR),
        target / "fontawesome" / "css": Path(font_awesome.BASE_DIR) / "css",
        target / "fontawesome" / "webfonts": Path(font_awesome.BASE_DIR) / "webfonts",
    }
    for destination, source in copies.items():
        shutil.copytree(source, destination, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.map", "*.less", "*.scss"))
    (target / "bootstrap-table").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TABLE_STAND_IN, target / "bootstrap-table" / TABLE_STAND_IN.name)


def make_offline(site: Path) -> list[str]:
    """Rewrite every page of the Data Docs site at ``site`` to use shipped assets. Returns the
    external addresses that were removed (not shipped)."""
    vendor = site / "static" / "vendor"
    _vendor(vendor)
    removed: set[str] = set()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")

        def local(match: re.Match) -> str:
            url = match.group(1) or match.group(2) or match.group(3)
            shipped = vendor / SHIPPED[url] if url in SHIPPED else None
            if shipped is None and match.group(3):
                # GX's logo, fetched from its web assets: the same image ships in static/images.
                image = site / "static" / "images" / url.split("?")[0].rsplit("/", 1)[-1]
                shipped = image if image.is_file() else None
            if shipped is None:
                removed.add(url)
                return ""
            relative = os.path.relpath(shipped, page.parent).replace(os.sep, "/")
            return INTEGRITY.sub("", match.group(0).replace(url, relative))

        page.write_text(EXTERNAL_TAG.sub(local, text), encoding="utf-8")
    prune_static(site)
    return sorted(removed)


LOCAL_REFERENCE = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"'#?]+)|url\(\s*["']?([^"')#?]+)""", re.IGNORECASE)
"""A file a page or stylesheet loads: ``src=``, ``href=`` and CSS ``url(...)``."""


def prune_static(site: Path) -> int:
    """Remove the files of ``<site>/static`` that no page loads, directly or through a
    stylesheet it loads (GX ships fonts, animations and logos its pages never use, and the
    shipped packages more than the pages name): 7.2 MB of static files per site, raw and marts
    each, of which about 1.3 MB is used (docs/decisions.md 86). Returns the bytes removed."""
    static = (site / "static").resolve()
    if not static.is_dir():
        return 0
    reachable: set[Path] = set()
    todo = list(site.rglob("*.html"))
    while todo:
        current = todo.pop()
        text = current.read_text(encoding="utf-8", errors="replace")
        for match in LOCAL_REFERENCE.finditer(text):
            ref = (match.group(1) or match.group(2)).strip()
            if not ref or ":" in ref.split("/", 1)[0] or ref.startswith("//"):
                continue  # http(s):, data:, javascript:, mailto: and the like
            target = (current.parent / ref).resolve()
            if target.is_relative_to(static) and target.is_file() and target not in reachable:
                reachable.add(target)
                if target.suffix.lower() == ".css":
                    todo.append(target)
    freed = 0
    for path in sorted(static.rglob("*"), reverse=True):
        if path.is_file() and path.resolve() not in reachable:
            freed += path.stat().st_size
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return freed


def external_references(site: Path) -> list[tuple[str, str]]:
    """(page, address) of every stylesheet or script still fetched from the network."""
    found = []
    for page in site.rglob("*.html"):
        for match in EXTERNAL_TAG.finditer(page.read_text(encoding="utf-8")):
            found.append((str(page.relative_to(site)),
                          match.group(1) or match.group(2) or match.group(3)))
    return found
