"""The summary ``make run`` prints after a publish, read from the published warehouse."""
from __future__ import annotations

from pathlib import Path


def summary(warehouse: Path) -> str:
    """A few lines from the published warehouse, read through a read-only connection. The
    figures come from the dbt models the quality report reads (the current Frontex release,
    the report's route chart and year-to-date mart, the EU total of the returns marts, the
    headline indicators): no rule of its own, so the summary and the report cannot disagree."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        lines = _frontex_summary(con)
        lines += _returns_summary(con)
        lines += _funding_summary(con)
        lines += _readmission_summary(con)
        lines += _headlines_summary(con)
    return "\n".join(lines)


def _has(con, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def _frontex_summary(con) -> list[str]:
    """The current Frontex release (marts.fct_border_crossings_current), its routes in the latest
    complete year (the report's chart data, quality.rpt_detections_by_route_month) and the year to
    date (marts.rpt_detections_ytd_by_route)."""
    if not (_has(con, "marts", "fct_border_crossings_current")
            and _has(con, "quality", "rpt_detections_by_route_month")):
        return ["Frontex: this warehouse was published by an older version (no "
                "marts.fct_border_crossings_current); the next run rebuilds it"]
    found = con.execute("""
        select release_date, count(*), sum(detections), min(month), max(month)
        from marts.fct_border_crossings_current group by release_date""").fetchone()
    if not found:
        return ["Frontex: no release loaded"]
    release, rows, total, first, last = found
    lines = [f"Frontex release {release}: {rows:,} rows, {total:,} detections, "
             f"{first:%b %Y} - {last:%b %Y}"]
    year = con.execute("""
        select year(month) from quality.rpt_detections_by_route_month
        group by 1 having count(distinct month) = 12 order by 1 desc limit 1""").fetchone()
    if year:
        lines.append(f"Detections by route, {year[0]} (latest complete year):")
        for route, n in con.execute("""
                select route, sum(detections) from quality.rpt_detections_by_route_month
                where year(month) = ? group by route order by 2 desc""", [year[0]]).fetchall():
            lines.append(f"  {route:<40} {n:>10,}")
    ytd = con.execute("""select route, through_month, ytd_detections, prior_ytd_detections,
                                change_pct from marts.rpt_detections_ytd_by_route
                         order by ytd_detections desc""").fetchall()
    if ytd:
        lines.append(f"Year to date through {ytd[0][1]:%b %Y} against the same months a year "
                     "earlier:")
        for route, _, now, before, pct in ytd:
            change = "n/a" if pct is None else f"{pct:+.1f}%"
            lines.append(f"  {route:<40} {now:>10,} (was {before:,}, {change})")
    return lines


def _headlines_summary(con) -> list[str]:
    """The report's headline indicators (dbt model quality.rpt_headline_indicators), as it
    shows them."""
    from pipeline.report import in_unit

    if not _has(con, "quality", "rpt_headline_indicators"):
        return []
    lines = ["Headline indicators (the quality report's; definitions there):"]
    for label, unit, period, value, previous_period, previous, change in con.execute("""
            select label, unit, period, value, previous_period, previous_value, change_pct
            from quality.rpt_headline_indicators order by position""").fetchall():
        before = (f" (was {in_unit(previous, unit)} in {previous_period}"
                  + (f", {change:+.1f}%" if change is not None else "") + ")"
                  if previous is not None else "")
        lines.append(f"  {label}, {period}: {in_unit(value, unit)}{before}")
    return lines


def _readmission_summary(con) -> list[str]:
    """Readmission cooperation: the third countries with the most detections, with their
    instrument, Art. 25a status and latest return rate."""
    if not _has(con, "marts", "rpt_third_country_profile"):
        return []
    rows, countries = con.execute("""select count(*), count(distinct country_code)
                                     from marts.fct_readmission_cooperation""").fetchone()
    if not rows:
        return ["Readmission cooperation: no data loaded"]
    lines = [f"Readmission cooperation: {rows:,} country-years, {countries} third countries; "
             "most detections:"]
    for rank, iso2, name, detections, year, instrument, art25a, rate, returns_year in con.execute("""
            select detections_rank, country_code, country_name, detections, detections_year,
                   readmission_instrument, art25a_status, return_rate, returns_year
            from marts.rpt_third_country_profile order by detections_rank limit 5""").fetchall():
        rate_text = "n/a" if rate is None else f"{rate:.0%} ({returns_year})"
        lines.append(f"  {rank}. {iso2} {name[:24]:<24} {detections or 0:>7,} detections in {year}; "
                     f"{instrument}, Art. 25a {art25a}; return rate {rate_text}")
    return lines


def _funding_summary(con) -> list[str]:
    """Funding: what each source holds, and whether a snapshot is partial."""
    if not _has(con, "marts", "fct_funding_disbursements"):
        return []
    rows = con.execute("""
        select source, count(*), count(distinct programme_or_action_key),
               string_agg(distinct stage, ', ' order by stage), bool_and(is_complete_snapshot),
               any_value(completeness_note) filter (where not is_complete_snapshot)
        from marts.fct_funding_disbursements group by source order by source""").fetchall()
    if not rows:
        return ["Funding: no data loaded"]
    lines = ["Funding (fct_funding_disbursements; amounts of different stages and as-of dates "
             "are never added up):"]
    for source, n, keys, stages, complete, note in rows:
        lines.append(f"  {source:<30} {n:>4,} rows, {keys:>3,} programmes or actions; "
                     f"stages: {stages}")
        if not complete:
            lines.append(f"    PARTIAL SNAPSHOT: {note}")
    for title, allocated, paid, rate in con.execute("""
            select programme_or_action_title, allocated_eur, paid_eur, absorption_rate
            from marts.rpt_funding_absorption order by allocated_eur desc limit 5""").fetchall():
        lines.append(f"  absorption {rate:.1%}: EUR {paid / 1e6:,.1f}m paid of "
                     f"{allocated / 1e6:,.1f}m allocated, {title[:60]}")
    return lines


def _returns_summary(con) -> list[str]:
    """Returns: the EU return rate by year, and how the warehouse compares with what Eurostat
    published."""
    if not _has(con, "marts", "fct_returns"):
        return []
    rows, first, last = con.execute("""select count(*), min(period), max(period)
                                       from marts.fct_returns""").fetchone()
    if not rows:
        return ["Eurostat returns: no data loaded"]
    lines = [f"Eurostat returns: {rows:,} rows (period x reporting country x citizenship x "
             f"measure), {first} - {last}",
             "EU return rate (returned / ordered to leave, same year; the EU total of each "
             "year, rpt_return_rates.is_eu_total):"]
    if not con.execute("""select count(*) from duckdb_columns()
                          where schema_name = 'marts' and table_name = 'rpt_return_rates'
                            and column_name = 'is_eu_total'""").fetchone()[0]:
        return lines[:1] + ["EU return rate: this warehouse was published by an older version "
                            "(no rpt_return_rates.is_eu_total); the next run rebuilds it"]
    for period, geo, ordered, returned, rate in con.execute("""
            select period, geo, ordered_to_leave, returned, return_rate
            from marts.rpt_return_rates
            where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'
            order by period""").fetchall():
        returned_text = "n/a" if returned is None else f"{returned:,}"
        rate_text = "n/a" if rate is None else f"{rate:.1%}"
        lines.append(f"  {period} {geo:<10} ordered {ordered:>9,}  returned {returned_text:>9}  "
                     f"rate {rate_text}")
    statuses = con.execute("""select status, count(*) from marts.rpt_returns_reconciliation
                              group by 1 order by 2 desc""").fetchall()
    if statuses:
        lines.append("Against Eurostat's published headline figures: "
                     + ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in statuses))
    return lines
