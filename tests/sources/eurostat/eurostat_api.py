"""Eurostat dissemination API answers, written here in the API's own formats, for the replay
server: the table of contents (tab-separated, quoted, dates ``DD.MM.YYYY``), data structure
definitions (SDMX 2.1 structure XML: ``s:Dimension id=... position=...``) and SDMX-CSV data
(``DATAFLOW,LAST UPDATE,freq,...,TIME_PERIOD,OBS_VALUE,OBS_FLAG,CONF_STATUS``, codes, gzip as
``compressed=true`` returns it, without a Content-Encoding header).

Most figures in ``ROWS`` are Eurostat's published ones for those cells (as transcribed in
``../shared/data/eurostat/published/returns_published.csv``: EU totals 2022-2023, DE returns
2023, 2024-Q4); DE orders to leave, FR x DZ, the asylum and illegal-presence cells are made up
for this test. Enough to exercise the HTTP path; the parsers are tested on the full recorded
files elsewhere.
"""
from __future__ import annotations

import gzip

API = "/eurostat/api/dissemination"
TOC_PATH = f"{API}/catalogue/toc/txt"
LAST_UPDATE = "18/03/25 11:00:00"

# Dimension order of each dataset's structure definition (time dimension last, not listed).
DIMENSIONS = {
    "migr_eiord": ["freq", "citizen", "age", "sex", "unit", "geo"],
    "migr_eiord1": ["freq", "citizen", "age", "sex", "unit", "geo"],
    "migr_eirtn": ["freq", "c_dest", "citizen", "age", "sex", "unit", "geo"],
    "migr_eirtn1": ["freq", "c_dest", "citizen", "age", "sex", "unit", "geo"],
    "migr_asyappctza": ["freq", "citizen", "sex", "unit", "age", "asyl_app", "geo"],
    "migr_eipre": ["freq", "citizen", "age", "sex", "unit", "reason", "apprehen", "geo"],
}
REQUIRED = tuple(DIMENSIONS)

# (dataset, {dimension: code}, period, value, flag)
ROWS = {
    "migr_eiord": [
        ({"citizen": "TOTAL", "geo": "EU27_2020"}, "2023", "484160", ""),
        ({"citizen": "TOTAL", "geo": "DE"}, "2023", "61355", ""),
        ({"citizen": "DZ", "geo": "FR"}, "2023", "29880", "p"),
        ({"citizen": "TOTAL", "geo": "EU27_2020"}, "2022", "466350", ""),
    ],
    "migr_eiord1": [
        ({"citizen": "TOTAL", "geo": "EU27_2020"}, "2024-Q4", "124935", "p"),
        ({"citizen": "TOTAL", "geo": "FR"}, "2024-Q4", "31880", "p"),
    ],
    "migr_eirtn": [
        ({"c_dest": "TOTAL", "citizen": "TOTAL", "geo": "EU27_2020"}, "2023", "111185", ""),
        ({"c_dest": "THRD", "citizen": "TOTAL", "geo": "EU27_2020"}, "2023", "91465", ""),
        ({"c_dest": "TOTAL", "citizen": "TOTAL", "geo": "DE"}, "2023", "15445", ""),
        ({"c_dest": "TOTAL", "citizen": "GE", "geo": "EU27_2020"}, "2023", "10345", ""),
    ],
    "migr_eirtn1": [
        ({"c_dest": "THRD", "citizen": "TOTAL", "geo": "EU27_2020"}, "2024-Q4", "28630", "p"),
    ],
    "migr_asyappctza": [
        ({"citizen": "TOTAL", "asyl_app": "ASY_APP", "geo": "DE"}, "2023", "351915", ""),
        ({"citizen": "UA", "asyl_app": "ASY_APP", "geo": "DE"}, "2023", "", "c"),
    ],
    "migr_eipre": [
        ({"citizen": "TOTAL", "reason": "TOTAL", "apprehen": "TOTAL", "geo": "EL"}, "2023",
         "55015", ""),
    ],
}
TOTALS = {"freq": "A", "age": "TOTAL", "sex": "T", "unit": "PER"}


def toc(updates: dict[str, str], spans: dict[str, tuple[str, str]] | None = None) -> bytes:
    """A table of contents listing ``updates`` (dataset -> ``DD.MM.YYYY``) under a folder, one
    dataset twice (as in the real file, where a dataset sits under several themes)."""
    spans = spans or {}
    lines = ['"title"\t"code"\t"type"\t"last update of data"\t"last table structure change"\t'
             '"data start"\t"data end"\t"values"',
             '"Database by themes"\t"data"\t"folder"\t" "\t" "\t" "\t" "\t" "',
             '    "Population and social conditions"\t"popul"\t"folder"\t" "\t" "\t" "\t" "\t" "']
    for code, update in updates.items():
        start, end = spans.get(code, ("2008", "2024"))
        lines.append(f'        "Title of {code}"\t"{code}"\t"dataset"\t"{update}"\t'
                     f'"01.02.2024"\t"{start}"\t"{end}"\t"1234"')
    first = next(iter(updates), None)
    if first:
        start, end = spans.get(first, ("2008", "2024"))
        lines.append(f'    "Also listed under another theme"\t"{first}"\t"dataset"\t'
                     f'"{updates[first]}"\t"01.02.2024"\t"{start}"\t"{end}"\t"1234"')
    return ("\n".join(lines) + "\n").encode("utf-8")


def dsd(dataset: str, dimensions: list[str] | None = None) -> bytes:
    dims = dimensions or DIMENSIONS[dataset]
    parts = [f'<s:Dimension id="{d}" position="{i}"><s:LocalRepresentation><s:Enumeration>'
             f'<Ref agencyID="ESTAT" class="Codelist" id="{d.upper()}" package="codelist" '
             f'version="1.0"/></s:Enumeration></s:LocalRepresentation></s:Dimension>'
             for i, d in enumerate(dims, 1)]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<m:Structure xmlns:m="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
        'xmlns:s="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure" '
        'xmlns="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common">'
        f'<m:Structures><s:DataStructures><s:DataStructure id="{dataset.upper()}" '
        'agencyID="ESTAT" version="1.0"><s:DataStructureComponents>'
        '<s:DimensionList id="DimensionDescriptor">' + "".join(parts)
        + f'<s:TimeDimension id="TIME_PERIOD" position="{len(dims) + 1}"/></s:DimensionList>'
        '</s:DataStructureComponents></s:DataStructure></s:DataStructures></m:Structures>'
        '</m:Structure>').encode("utf-8")


def sdmx_csv(dataset: str, rows=None, last_update: str = LAST_UPDATE) -> str:
    dims = DIMENSIONS[dataset]
    freq = "Q" if dataset.endswith("1") else "A"
    lines = [",".join(["DATAFLOW", "LAST UPDATE", *dims, "TIME_PERIOD", "OBS_VALUE", "OBS_FLAG",
                       "CONF_STATUS"])]
    for codes, period, value, flag in (ROWS[dataset] if rows is None else rows):
        full = {**TOTALS, "freq": freq, **codes}
        conf = "C" if flag == "c" else ""
        lines.append(",".join([f"ESTAT:{dataset.upper()}(1.0)", last_update,
                               *[full[d] for d in dims], period, value,
                               "" if flag == "c" else flag, conf]))
    return "\n".join(lines) + "\n"


def gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"))


def data_path(dataset: str) -> str:
    return f"{API}/sdmx/2.1/data/{dataset}/{key(dataset)}"


def dsd_path(dataset: str) -> str:
    return f"{API}/sdmx/2.1/datastructure/ESTAT/{dataset.upper()}"


def key(dataset: str) -> str:
    filters = {"sex": "T", "age": "TOTAL"}
    return ".".join(filters.get(d, "") for d in DIMENSIONS[dataset])
