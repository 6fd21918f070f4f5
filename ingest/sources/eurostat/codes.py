"""What the warehouse knows about Eurostat's datasets and codes, in one place.

- ``DATASETS``: the datasets fetched, with the dimension filters applied to the API query.
- Labels to codes: a label in a file that carries labels (legacy Data Browser exports, SDMX-CSV
  downloaded with labels) becomes its Eurostat code through the reference tables in
  ``dbt_project/seeds`` (the same ones BI tools see in schema ``reference``): country names from
  ``country_codes`` (ISO 3166 names, with Eurostat's EL and UK codes), and the explicit table
  ``eurostat_labels`` for what ISO names do not cover (Eurostat's own and former labels,
  aggregates, and the other dimensions). A label found in neither is an error.
- Known codes, for the raw audit: every ``eurostat_code`` of ``country_codes`` plus the aggregates
  of ``eurostat_aggregates``.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field

from ingest.config import SEEDS_DIR
from ingest.errors import DataError

LABELS_SEED = SEEDS_DIR / "eurostat_labels.csv"
COUNTRIES_SEED = SEEDS_DIR / "country_codes.csv"
AGGREGATES_SEED = SEEDS_DIR / "eurostat_aggregates.csv"
FLAGS_SEED = SEEDS_DIR / "eurostat_flags.csv"
COUNTRY_DIMENSIONS = ("geo", "citizen", "c_dest")


@dataclass(frozen=True)
class Dataset:
    code: str
    title: str
    required: bool
    """False for datasets fetched 'where available': missing from the table of contents is a
    warning, not an error."""
    filters: dict[str, str] = field(default_factory=dict)
    """Dimension filters of the API query, applied to the dimensions the dataset has (the
    structure definition says which, and in which order)."""


TOTALS = {"sex": "T", "age": "TOTAL"}

DATASETS: dict[str, Dataset] = {d.code: d for d in (
    Dataset("migr_eiord", "Third country nationals ordered to leave - annual data", True, TOTALS),
    Dataset("migr_eiord1", "Third country nationals ordered to leave - quarterly data", True,
            TOTALS),
    Dataset("migr_eirtn", "Third country nationals returned following an order to leave - "
            "annual data", True, TOTALS),
    Dataset("migr_eirtn1", "Third country nationals returned following an order to leave - "
            "quarterly data", True, TOTALS),
    Dataset("migr_eirt_vol", "Third-country nationals who have left the territory by type of "
            "return and citizenship", False, TOTALS),
    Dataset("migr_eirt_ass", "Third-country nationals who have left the territory by type of "
            "assistance received and citizenship", False, TOTALS),
    Dataset("migr_asyappctza", "Asylum applicants by type, citizenship, age and sex - annual "
            "aggregated data", True, TOTALS),
    Dataset("migr_eipre", "Third country nationals found to be illegally present - annual data",
            True, TOTALS),
)}


def datasets() -> dict[str, Dataset]:
    return DATASETS


def _read(path):
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@functools.lru_cache(maxsize=1)
def _label_table() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for row in _read(COUNTRIES_SEED):
        if row["eurostat_code"]:
            table[("country", row["country_name"])] = row["eurostat_code"]
    for row in _read(LABELS_SEED):
        key = (row["dimension"], row["label"])
        if key in table and table[key] != row["code"]:
            raise ValueError(f"{LABELS_SEED.name}: {row['label']!r} maps to {row['code']} but "
                             f"{COUNTRIES_SEED.name} says {table[key]}")
        table[key] = row["code"]
    return table


def code_for(dimension: str, label: str, file_name: str, row: int) -> str:
    """The Eurostat code of ``label`` in ``dimension``; a ``DataError`` naming the file, the
    row and the label when the reference tables have none."""
    table = _label_table()
    dimension = dimension.lower()
    kind = "country" if dimension in COUNTRY_DIMENSIONS else dimension
    code = table.get((kind, label))
    if code is None:
        raise DataError(file_name, "label mapped to a Eurostat code",
                        f"{dimension} label {label!r} has no Eurostat code in "
                        f"dbt_project/seeds/{COUNTRIES_SEED.name} (country names) or "
                        f"{LABELS_SEED.name}: add it there, with its source", row=row)
    return code


def labels() -> dict[tuple[str, str], str]:
    """Every (dimension, label) -> code the reference tables define."""
    return dict(_label_table())


@functools.lru_cache(maxsize=1)
def known_country_codes() -> frozenset[str]:
    """Eurostat geo and citizen codes the warehouse can place in ``dim_country``."""
    codes = {r["eurostat_code"] for r in _read(COUNTRIES_SEED) if r["eurostat_code"]}
    codes |= {r["code"] for r in _read(AGGREGATES_SEED)}
    return frozenset(codes)


@functools.lru_cache(maxsize=1)
def known_flags() -> frozenset[str]:
    """Single-letter observation flags of both codings (before and after January 2025)."""
    return frozenset(r["flag"] for r in _read(FLAGS_SEED) if r["kind"] == "obs_flag")


@functools.lru_cache(maxsize=1)
def known_conf_status() -> frozenset[str]:
    return frozenset(r["flag"] for r in _read(FLAGS_SEED) if r["kind"] == "conf_status")


MEASURE_LABELS = {"ordered_to_leave": "ordered to leave", "returned": "returned",
                  "returned_to_third_country": "returned to a third country"}
"""Plain words for the measures of seed eurostat_return_measures (its descriptions are long)."""


def label(identifier: str) -> str | None:
    """What the report shows for a Eurostat identifier (``SourceSpec.labels``): a dataset code
    by its title, a measure."""
    if identifier in DATASETS:
        return (DATASETS[identifier].title.replace(" - annual data", ", annual")
                .replace(" - quarterly data", ", quarterly"))
    return MEASURE_LABELS.get(identifier)
