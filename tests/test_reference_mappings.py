"""Reference mappings checked against an independent authority: ISO 3166-1 as shipped by
``pycountry`` (Debian's iso-codes), not against the seeds themselves.

Every row of the seeds that maps a publisher's label or code to a country (and the readmission
registry's ``third_country`` -> ``iso2``) must agree with ISO: the alpha-2 code exists, the
alpha-3 is that country's, and the label is that code's ISO name, official name or common name,
compared after normalising case, accents, punctuation, "the", "Republic of" and word order. A
label that is another code's ISO name fails, and so does a label that is no ISO name at all,
unless it is one of the reviewed exceptions of ``fixtures/reference_mapping_exceptions.csv``
(label, code, the files it is found in, reason): each covers exactly the rows with that label
and that code in those files, must be needed (ISO does not already agree) and must be used.
``pycountry.countries.search_fuzzy`` only suggests what a failing label could be, in the message.

Rows are numbered as in a spreadsheet: the header is row 1, the first data row row 2.

The helpers ``iso_code_for`` and ``eurostat_code_for`` (ISO plus the hand-read labels of the
recorded Eurostat files) give the other tests an expected code that does not go through the
warehouse's own lookup (``ingest.sources.eurostat.codes``).
"""
from __future__ import annotations

import csv
import functools
import io
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pycountry
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "dbt_project" / "seeds"
EXCEPTIONS_FILE = Path(__file__).parent / "fixtures" / "reference_mapping_exceptions.csv"
REGISTRY = "registries/readmission_instruments.csv"

# Eurostat's two country codes that are not ISO alpha-2 (both "exceptionally reserved" in ISO
# 3166-1 for these countries). Used only in columns that hold Eurostat codes; there an ISO GR or
# GB is an error. Eurostat pairs them itself: sdmx/migr_asyappctza.csv, geo EL 'Greece' and
# UK 'United Kingdom'.
EUROSTAT_TO_ISO = {"EL": "GR", "UK": "GB"}
ISO_TO_EUROSTAT = {iso: eurostat for eurostat, iso in EUROSTAT_TO_ISO.items()}

# (seed, column) pairs holding country codes or names, and what checks them. A seed column that
# looks like country codes or names and is not here fails test_no_country_column_is_unchecked.
CHECKED_COLUMNS = {
    ("country_codes.csv", "country_code"), ("country_codes.csv", "iso2"),
    ("country_codes.csv", "iso3"), ("country_codes.csv", "eurostat_code"),
    ("country_codes.csv", "country_name"),
    ("frontex_nationalities.csv", "frontex_label"), ("frontex_nationalities.csv", "country_code"),
    ("eurostat_labels.csv", "label"), ("eurostat_labels.csv", "code"),
    ("country_name_aliases.csv", "label"), ("country_name_aliases.csv", "country_code"),
    ("eurostat_aggregate_members.csv", "member"),
    ("eu_membership.csv", "country_code"),
}


# --- the authority --------------------------------------------------------------------------

def normalise(name: str) -> str:
    """Case, accents, punctuation, 'the', 'of', 'and', 'Republic of' and word order removed:
    'Congo, The Democratic Republic of the' and 'Democratic Republic of the Congo' are the
    same key; 'Dominica' and 'Dominican Republic', 'Niger' and 'Nigeria' stay apart."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"[^a-z0-9]+", " ", text.replace("&", " and "))
    text = re.sub(r"\brepublic of\b", " ", text)
    return " ".join(sorted(w for w in text.split() if w not in {"the", "of", "and"}))


@dataclass(frozen=True)
class Authority:
    name: dict[str, str]                # current alpha-2 -> ISO short name
    alpha3: dict[str, str]              # current alpha-2 -> alpha-3
    owners: dict[str, frozenset[str]]   # normalised name -> current alpha-2 codes bearing it
    historic: dict[str, list]           # withdrawn alpha-2 (not reassigned) -> its records

    def knows(self, code: str) -> bool:
        return code in self.name or code in self.historic

    def describe(self, code: str) -> str:
        if code in self.name:
            return f"{code} is {self.name[code]}"
        if code in self.historic:
            return " or ".join(f"{code} is {h.name} (withdrawn {h.withdrawal_date})"
                               for h in self.historic[code])
        return f"{code} is no ISO 3166-1 alpha-2 code"


def _names(record) -> set[str]:
    """The record's name, official name and common name, each also without a parenthesis
    ('Holy See (Vatican City State)' -> 'Holy See'); never applied to the seeds' labels,
    whose parentheses can be what tells two countries apart ('Congo (Kinshasa)')."""
    names = {getattr(record, a, None) for a in ("name", "official_name", "common_name")} - {None}
    return names | {re.sub(r"\s*\([^)]*\)", "", n).strip() for n in names}


@functools.lru_cache(maxsize=1)
def authority() -> Authority:
    owners: dict[str, set[str]] = {}
    for c in pycountry.countries:
        for n in _names(c):
            owners.setdefault(normalise(n), set()).add(c.alpha_2)
    current = {c.alpha_2 for c in pycountry.countries}
    historic: dict[str, list] = {}
    for h in pycountry.historic_countries:
        if h.alpha_2 not in current:
            historic.setdefault(h.alpha_2, []).append(h)
    return Authority({c.alpha_2: c.name for c in pycountry.countries},
                     {c.alpha_2: c.alpha_3 for c in pycountry.countries},
                     {k: frozenset(v) for k, v in owners.items()}, historic)


def iso_code_for(label: str) -> str | None:
    """The one current ISO alpha-2 code whose name, official name or common name is ``label``
    (normalised); None when none or several."""
    owners = authority().owners.get(normalise(label), frozenset())
    return next(iter(owners)) if len(owners) == 1 else None


def _hint(label: str) -> str:
    """A hint only: what pycountry's fuzzy search makes of the label (or of the label without
    its parentheses and footnote markers); it decides nothing."""
    for text in dict.fromkeys([label, re.sub(r"\([^)]*\)|[*^]", " ", label).strip()]):
        try:
            found = pycountry.countries.search_fuzzy(text)[:2]
        except LookupError:
            continue
        return "pycountry.search_fuzzy suggests " + ", ".join(
            f"{c.alpha_2} {c.name}" for c in found)
    return "pycountry.search_fuzzy finds nothing like it"


def name_problem(label: str, code: str, iso: str) -> str | None:
    """None when ``label`` is an ISO name of ``iso`` and of no other code; else what ISO says
    (``code`` is the code as written in the file, ``iso`` its ISO alpha-2)."""
    auth = authority()
    key = normalise(label)
    owners = auth.owners.get(key, frozenset())
    if owners == {iso}:
        return None
    if not owners and iso in auth.historic and any(
            normalise(n) == key for h in auth.historic[iso] for n in _names(h)):
        return None  # a withdrawn code under its name (Netherlands Antilles, AN)
    said = f"'{label}' -> {code}, but ISO says {auth.describe(iso)}"
    if owners:
        return f"{said}; '{label}' is " + " or ".join(
            f"{o} ({auth.name[o]})" for o in sorted(owners))
    return f"{said}; '{label}' is no ISO name ({_hint(label)})"


# --- the seeds ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    file: str
    row: int
    label: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row}: {self.message}"


@dataclass(frozen=True)
class Documented:
    label: str
    code: str
    files: tuple[str, ...]
    reason: str


def read_exceptions(path: Path = EXCEPTIONS_FILE) -> dict[tuple[str, str], Documented]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [Documented(r["label"], r["code"], tuple(r["files"].split(";")), r["reason"])
                for r in csv.DictReader(fh)]
    table = {(e.label, e.code): e for e in rows}
    assert len(table) == len(rows), "an exception is listed twice"
    assert all(e.reason.strip() and e.files for e in rows), "an exception without a reason"
    return table


# The country key column is country_code (docs/decisions.md 48 and 80: country_name_aliases too);
# older checkouts have country_key: read as one.
RENAMED = {"country_key": "country_code"}


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(n, {RENAMED.get(k, k): (v or "").strip() for k, v in row.items()})
                for n, row in enumerate(csv.DictReader(fh), start=2)]


@dataclass
class Report:
    problems: list[Problem]
    used: set[tuple[str, str, str]]     # (label, code, file) of exceptions that covered a row
    rows: dict[str, int]                # file -> rows checked


class _Checker:
    def __init__(self, exceptions):
        self.exceptions = exceptions
        self.report = Report([], set(), {})

    def fail(self, file, row, label, code, message):
        self.report.problems.append(Problem(file, row, label, code, message))

    def excepted(self, file, label, code) -> Documented | None:
        e = self.exceptions.get((label, code))
        return e if e is not None and file in e.files else None

    def mapping(self, file, row, label, code, iso):
        """``label`` -> ``code`` (ISO alpha-2 ``iso``) against ISO, or a documented exception
        (which cannot cover a label that is another code's ISO name)."""
        problem = name_problem(label, code, iso)
        exception = self.excepted(file, label, code)
        if exception is None:
            if problem:
                self.fail(file, row, label, code, problem)
            return
        self.report.used.add((label, code, file))
        owners = authority().owners.get(normalise(label), frozenset())
        if problem is None:
            self.fail(file, row, label, code, f"the exception for '{label}' -> {code} is not "
                      "needed: ISO agrees (remove it from the exception list)")
        elif owners:
            self.fail(file, row, label, code, f"{problem} (an exception cannot map another "
                      "country's ISO name)")

    def eurostat_iso(self, file, row, label, code) -> str:
        if code in ISO_TO_EUROSTAT:
            self.fail(file, row, label, code, f"{code} in a column of Eurostat codes: Eurostat "
                      f"writes {ISO_TO_EUROSTAT[code]} for {authority().name[code]}")
        return EUROSTAT_TO_ISO.get(code, code)

    def code_only(self, file, row, code, eurostat: bool):
        iso = self.eurostat_iso(file, row, "", code) if eurostat else code
        if iso not in authority().name:
            self.fail(file, row, "", code, f"{code} is not a current ISO 3166-1 alpha-2 code"
                      + (" (nor Eurostat's EL or UK)" if eurostat else ""))


def check_reference_mappings(seeds_dir: Path = SEEDS_DIR, registry: Path | None = None,
                             exceptions=None) -> Report:
    """Every country mapping of the seeds in ``seeds_dir`` (and of the readmission registry
    file ``registry``, when given) against ISO 3166-1."""
    auth = authority()
    check = _Checker(read_exceptions() if exceptions is None else exceptions)
    count = check.report.rows

    file = "country_codes.csv"
    rows = _rows(seeds_dir / file)
    count[file] = len(rows)
    for n, r in rows:
        code, iso2, iso3, name = r["country_code"], r["iso2"], r["iso3"], r["country_name"]
        if iso2 and iso2 != code:
            check.fail(file, n, name, code, f"country_code {code} is not its iso2 {iso2}")
        check.mapping(file, n, name, code, iso2 or code)
        if iso2 and iso2 in auth.alpha3 and iso3 != auth.alpha3[iso2]:
            other = [a for a, b in auth.alpha3.items() if b == iso3]
            check.fail(file, n, name, code, f"iso3 {iso3 or '(empty)'}, but ISO says "
                       f"{auth.describe(iso2)}, alpha-3 {auth.alpha3[iso2]}"
                       + "".join(f"; {iso3} is {auth.name[o]}" for o in other))
        elif iso2 in auth.historic and iso3 not in {h.alpha_3 for h in auth.historic[iso2]}:
            check.fail(file, n, name, code, f"iso3 {iso3} is not that of {auth.describe(iso2)}")
        elif not iso2 and iso3:
            check.fail(file, n, name, code, f"iso3 {iso3} without an iso2")
        if r["eurostat_code"]:
            eurostat = check.eurostat_iso(file, n, name, r["eurostat_code"])
            if eurostat != code:
                check.fail(file, n, name, code, f"eurostat_code {r['eurostat_code']} is "
                           f"{auth.describe(eurostat)}, not {code}")

    for file, label_column, code_column in (
            ("frontex_nationalities.csv", "frontex_label", "country_code"),
            ("country_name_aliases.csv", "label", "country_code")):
        rows = _rows(seeds_dir / file)
        count[file] = len(rows)
        for n, r in rows:
            check.mapping(file, n, r[label_column], r[code_column], r[code_column])

    file = "eurostat_labels.csv"
    rows = [(n, r) for n, r in _rows(seeds_dir / file) if r["dimension"] == "country"]
    count[file] = len(rows)
    for n, r in rows:
        iso = check.eurostat_iso(file, n, r["label"], r["code"])
        check.mapping(file, n, r["label"], r["code"], iso)

    for file, column, eurostat in (("eurostat_aggregate_members.csv", "member", True),
                                   ("eu_membership.csv", "country_code", False)):
        if file == "eu_membership.csv" and not (seeds_dir / file).exists():
            continue  # a new seed (dim_country_eu_membership): checked once it is there
        rows = _rows(seeds_dir / file)
        count[file] = len(rows)
        for n, r in rows:
            check.code_only(file, n, r[column], eurostat)

    if registry is not None:
        rows = [(n, r) for n, r in _rows(registry) if r["iso2"] or r["third_country"]]
        count[REGISTRY] = len(rows)
        for n, r in rows:
            check.mapping(REGISTRY, n, r["third_country"], r["iso2"], r["iso2"])
    return check.report


# --- the tests ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(snapshot_dir) -> Report:
    return check_reference_mappings(SEEDS_DIR, snapshot_dir / REGISTRY)


def test_every_country_mapping_agrees_with_iso_3166(report):
    assert sum(report.rows.values()) > 600, report.rows
    assert not report.problems, "\n".join(map(str, report.problems))


def test_every_exception_is_used_where_it_says(report):
    """An exception names the files it covers; one that covers no row in one of them is stale
    (the row changed or went): remove it rather than let it wait for a wrong mapping."""
    declared = {(e.label, e.code, f) for e in read_exceptions().values() for f in e.files}
    assert declared - report.used == set()
    assert report.used - declared == set()


def test_no_country_column_is_unchecked():
    """A seed column whose values are mostly ISO codes or names must be checked above (or the
    checker extended): a new reference seed cannot slip past."""
    auth = authority()
    codes = set(auth.name) | set(auth.alpha3.values()) | set(EUROSTAT_TO_ISO)
    found = set()
    for path in sorted(SEEDS_DIR.glob("*.csv")):
        rows = [r for _, r in _rows(path)]
        for column in rows[0] if rows else ():
            values = [r[column] for r in rows if r[column]]
            hits = sum(v in codes or normalise(v) in auth.owners for v in values)
            if hits >= 3 and 2 * hits >= len(values):
                found.add((path.name, column))
    assert found - CHECKED_COLUMNS == set()


NEIGHBOURS = {"NE": "NG", "NG": "NE", "CG": "CD", "CD": "CG", "GN": "GW", "GW": "GN", "GQ": "GN",
              "PG": "GN", "DM": "DO", "DO": "DM", "SD": "SS", "SS": "SD", "AT": "AU", "AU": "AT",
              "SK": "SI", "SI": "SK", "IR": "IQ", "IQ": "IR", "KR": "KP", "KP": "KR",
              "ML": "MW", "MW": "ML", "NU": "NE"}


@pytest.mark.parametrize("label, code", [
    ("Niger", "NE"), ("Nigeria", "NG"),
    ("Congo", "CG"), ("Republic of the Congo", "CG"),
    ("Democratic Republic of the Congo", "CD"), ("Congo, The Democratic Republic of the", "CD"),
    ("Guinea", "GN"), ("Guinea-Bissau", "GW"), ("Equatorial Guinea", "GQ"),
    ("Papua New Guinea", "PG"), ("Dominica", "DM"), ("Dominican Republic", "DO"),
    ("Sudan", "SD"), ("South Sudan", "SS"), ("Austria", "AT"), ("Australia", "AU"),
    ("Slovakia", "SK"), ("Slovenia", "SI"), ("Iran", "IR"), ("Iraq", "IQ"),
    ("Korea", "KR"), ("South Korea", "KR"), ("Korea, Republic of", "KR"),
    ("North Korea", "KP"), ("Democratic People's Republic of Korea", "KP"),
    ("Gambia, The", "GM"), ("Côte d'Ivoire", "CI"), ("Cote d Ivoire", "CI"),
    ("Czech Republic", "CZ"), ("Virgin Islands, British", "VG"), ("U.S. Virgin Islands", "VI"),
    ("Holy See", "VA"), ("Niue", "NU"), ("Mali", "ML"), ("Malawi", "MW"),
])
def test_the_authority_tells_neighbours_apart(label, code):
    """The normalisation merges spellings of one country, never two countries: each label
    resolves to its code alone, and the same label mapped to a neighbour fails."""
    assert iso_code_for(label) == code
    assert name_problem(label, code, code) is None
    neighbour = NEIGHBOURS.get(code, "FR")
    assert name_problem(label, neighbour, neighbour) is not None


def plant(seeds: Path, file: str, match: dict[str, str], column: str, value: str) -> int:
    """Set ``column`` to ``value`` in the one row of ``seeds/file`` matching ``match``; its row
    number."""
    path = seeds / file
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    named = {RENAMED.get(f, f): f for f in fields}
    match, column = {named[k]: v for k, v in match.items()}, named[column]
    hits = [i for i, r in enumerate(rows) if all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (file, match, hits)
    rows[hits[0]][column] = value
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return hits[0] + 2


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    copy = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, copy)
    assert check_reference_mappings(copy).problems == []
    return copy


def test_planted_wrong_mappings_are_reported_exactly(seeds_copy):
    niger = plant(seeds_copy, "frontex_nationalities.csv", {"frontex_label": "Niger"},
                  "country_code", "NG")
    guinea = plant(seeds_copy, "frontex_nationalities.csv", {"frontex_label": "Guinea"},
                   "country_code", "GW")
    problems = check_reference_mappings(seeds_copy).problems
    assert {(p.file, p.row) for p in problems} == {("frontex_nationalities.csv", niger),
                                                   ("frontex_nationalities.csv", guinea)}
    messages = sorted(map(str, problems), key=lambda m: "Niger" not in m)
    assert messages[0] == (f"frontex_nationalities.csv row {niger}: 'Niger' -> NG, but ISO says "
                           "NG is Nigeria; 'Niger' is NE (Niger)")
    assert messages[1] == (f"frontex_nationalities.csv row {guinea}: 'Guinea' -> GW, but ISO "
                           "says GW is Guinea-Bissau; 'Guinea' is GN (Guinea)")


def test_exceptions_and_codes_are_exact(seeds_copy):
    """An exception covers its label with its code only; the alpha-3 and Eurostat columns of
    country_codes are checked too."""
    congo = plant(seeds_copy, "frontex_nationalities.csv", {"frontex_label": "Congo (Kinshasa)"},
                  "country_code", "CG")
    slovenia = plant(seeds_copy, "country_codes.csv", {"country_code": "SI"}, "iso3", "SVK")
    turkey = plant(seeds_copy, "eurostat_labels.csv", {"label": "Turkey"}, "code", "TM")
    greece = plant(seeds_copy, "country_codes.csv", {"country_code": "GR"}, "eurostat_code", "GR")
    problems = check_reference_mappings(seeds_copy).problems
    assert sorted((p.file, p.row) for p in problems) == sorted([
        ("frontex_nationalities.csv", congo), ("country_codes.csv", slovenia),
        ("eurostat_labels.csv", turkey), ("country_codes.csv", greece)])
    text = "\n".join(map(str, problems))
    assert "'Congo (Kinshasa)' -> CG, but ISO says CG is Congo" in text
    assert "iso3 SVK, but ISO says SI is Slovenia, alpha-3 SVN; SVK is Slovakia" in text
    assert "'Turkey' -> TM, but ISO says TM is Turkmenistan" in text
    assert "GR in a column of Eurostat codes: Eurostat writes EL for Greece" in text


# --- expected Eurostat codes without the warehouse's lookup ---------------------------------

# Labels of the recorded Eurostat files (WH_SNAPSHOT_DIR/eurostat) that are no ISO 3166 name,
# and their Eurostat codes, read by hand. File and line of the first occurrence; the code from
# Eurostat's code lists (the SDMX files pair code and label) or ISO where it is a former name.
EUROSTAT_LABELS_READ_BY_HAND = {
    # legacy/migr_eiord_Data_allcitizens.csv line 2 ("2012","European Union (28 countries)",...):
    # the EU of 28 (2013-2020), Eurostat code EU28 (sdmx/migr_eipre.csv line 2328 prints today's
    # label 'European Union - 28 countries (2013-2020)' for the same aggregate).
    "European Union (28 countries)": "EU28",
    # legacy/migr_eiord_1_Data.csv line 3: exported before 2020, when EU27 was the EU of
    # 2007-2013; Eurostat renamed that code EU27_2007 in February 2020.
    "European Union (27 countries)": "EU27_2007",
    "European Union - 27 countries (from 2020)": "EU27_2020",   # sdmx/migr_eipre.csv line 35
    "European Union - 28 countries (2013-2020)": "EU28",        # sdmx/migr_eipre.csv line 2328
    # legacy/migr_asyappctza_1_Data-2017-05-31-ADDED.csv line 2: outside the EU28.
    "Extra-EU-28": "EXT_EU28",
    # sdmx/migr_asyappctza.csv line 2: citizen code TOTAL, label 'Total'.
    "Total": "TOTAL",
    # legacy/migr_eiord_Data_allcitizens.csv line 867: Germany, ISO DE.
    "Germany (until 1990 former territory of the FRG)": "DE",
    # legacy/migr_eiord_Data_allcitizens.csv, CITIZEN column, lines given:
    "Former Yugoslav Republic of Macedonia, the": "MK",  # line 8; ISO MK North Macedonia
    "Turkey": "TR",                  # line 11; ISO TR Türkiye
    "Kosovo (under United Nations Security Council Resolution 1244/99)": "XK",  # line 15
    "Russia": "RU",                  # line 18; ISO RU Russian Federation
    "Vatican City State": "VA",      # line 21; ISO VA Holy See (Vatican City State)
    "Swaziland": "SZ",               # line 60; ISO SZ Eswatini
    "Cape Verde": "CV",              # line 63; ISO CV Cabo Verde
    "China (including Hong Kong)": "CN",  # line 117; ISO CN China
    "Myanmar/Burma": "MM",           # line 137; ISO MM Myanmar
    "Palestine": "PS",               # line 152; ISO PS Palestine, State of
    "Cook Islands (NZ)": "CK",       # line 170; ISO CK Cook Islands
}


def eurostat_code_for(label: str) -> str | None:
    """The Eurostat code of a label of the recorded files, by hand or by ISO (with Eurostat's
    EL and UK), never through ``ingest.sources.eurostat.codes``."""
    if label in EUROSTAT_LABELS_READ_BY_HAND:
        return EUROSTAT_LABELS_READ_BY_HAND[label]
    iso = iso_code_for(label)
    return ISO_TO_EUROSTAT.get(iso, iso)


def legacy_export_cells(path: Path) -> dict[tuple[str, str, str], tuple]:
    """(TIME, geo code, citizen code) -> (value or None for ':', flag or None, line) of a legacy
    Eurostat export, read with the csv module alone (values without thousands separators,
    labels to codes by ``eurostat_code_for``): a reading that shares no code with the loader."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    cells = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        geo, citizen = eurostat_code_for(row["GEO"]), eurostat_code_for(row["CITIZEN"])
        assert geo and citizen, (path.name, line, row["GEO"], row["CITIZEN"])
        value = row["Value"].strip()
        cells[(row["TIME"], geo, citizen)] = (None if value == ":" else int(value.replace(",", "")),
                                              row["Flag and Footnotes"].strip() or None, line)
    return cells
