"""Age percentiles per town (numpy's linear method), exact to the cent with integer arithmetic."""
from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

PERCENTILES = (50, 75, 99)


def percentile(ages: list[int], pct: int) -> float:
    """numpy.percentile(ages, pct) with linear interpolation, rounded to 2 decimals.

    ``ages`` is sorted. With h = pct/100 * (n-1), numpy gives a[lo] + (h - lo) * (a[lo+1] - a[lo]);
    computed in hundredths it is an integer, so the division by 100 is the only rounding and
    never meets a tie.
    """
    lo, frac = divmod(pct * (len(ages) - 1), 100)  # h = lo + frac/100
    hundredths = ages[lo] * 100
    if frac:
        hundredths += frac * (ages[lo + 1] - ages[lo])
    return hundredths / 100


def town_percentiles(town_ages: Iterable[tuple[str, int]]) -> list[dict[str, object]]:
    """(town, age) pairs sorted by town -> one entry per town with p50, p75, p99."""
    result = []
    for town, rows in groupby(town_ages, key=lambda row: row[0]):
        ages = sorted(age for _, age in rows)
        entry: dict[str, object] = {"town": town}
        for pct in PERCENTILES:
            entry[f"p{pct}"] = percentile(ages, pct)
        result.append(entry)
    return result
