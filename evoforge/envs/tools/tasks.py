"""The task types of the ``tools`` environment; each draws one task from a generator.

Every draft has the question, the calls a correct trajectory makes (computed with the same tools
the model calls, so later calls use earlier results), what each call is for, and the answer.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evoforge.envs.tools.catalogue import (
    FIELD_WORDS,
    FIELDS,
    TOOLS,
    UNIT_WORDS,
    UNITS,
    cities,
)


@dataclass(frozen=True)
class Draft:
    question: str
    calls: list[dict[str, Any]]
    """The expected calls in order: {"name", "arguments", "why"}."""
    answer: str | int | float
    kind: str
    """How the final answer is read: number, date, weekday or text."""


def _call(name: str, why: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "why": why}


def _run(call: dict[str, Any]) -> Any:
    return TOOLS[call["name"]].fn(**call["arguments"])


def _date(g: random.Random) -> str:
    return (dt.date(2019, 1, 1) + dt.timedelta(days=g.randint(0, 3000))).isoformat()


def calc(g: random.Random) -> Draft:
    a, b, c = g.randint(12, 999), g.randint(2, 99), g.randint(2, 60)
    expr = g.choice([f"({a} + {b}) * {c}", f"{a} * {b} - {c}", f"{a} - {b} * {c}", f"{a} / {c}"])
    call = _call("calculate", f"compute {expr}", expression=expr)
    return Draft(f"Use the calculator to compute {expr}.", [call], _run(call), "number")


def convert(g: random.Random) -> Draft:
    dim = g.choice(["length", "mass", "volume", "temperature"])
    src, dst = g.sample([u for u, (d, _) in UNITS.items() if d == dim], 2)
    value = g.choice([g.randint(1, 500), round(g.uniform(0.5, 300), 1)])
    call = _call(
        "convert_units",
        f"convert {value} {UNIT_WORDS[src]} to {UNIT_WORDS[dst]}",
        value=value,
        from_unit=src,
        to_unit=dst,
    )
    q = f"How many {UNIT_WORDS[dst]} is {value} {UNIT_WORDS[src]}?"
    return Draft(q, [call], _run(call), "number")


def date(g: random.Random) -> Draft:
    d = _date(g)
    form = g.choice(["add", "weekday", "between"])
    if form == "add":
        n = g.randint(2, 400)
        call = _call("add_days", f"find the date {n} days after {d}", date=d, days=n)
        return Draft(f"What is the date {n} days after {d}?", [call], _run(call), "date")
    if form == "weekday":
        call = _call("weekday", f"find the weekday of {d}", date=d)
        return Draft(f"What day of the week is {d}?", [call], _run(call), "weekday")
    e = _date(g)
    d, e = sorted([d, e])
    call = _call("days_between", f"count the days from {d} to {e}", start=d, end=e)
    return Draft(f"How many days are there from {d} to {e}?", [call], _run(call), "number")


def lookup(g: random.Random) -> Draft:
    city, field = g.choice(sorted(cities())), g.choice(FIELDS)
    call = _call(
        "lookup_city", f"look up the {FIELD_WORDS[field]} of {city}", city=city, field=field
    )
    q = f"According to the city table, what is the {FIELD_WORDS[field]} of {city}?"
    return Draft(q, [call], _run(call), "text" if field == "country" else "number")


def lookup_convert(g: random.Random) -> Draft:
    city, unit = g.choice(sorted(cities())), g.choice(["ft", "mi", "km"])
    first = _call("lookup_city", f"look up the elevation of {city}", city=city, field="elevation_m")
    second = _call(
        "convert_units",
        f"convert the elevation from metres to {UNIT_WORDS[unit]}",
        value=_run(first),
        from_unit="m",
        to_unit=unit,
    )
    q = f"What is the elevation of {city} in {UNIT_WORDS[unit]}? Look it up in the city table."
    return Draft(q, [first, second], _run(second), "number")


def lookup_calc(g: random.Random) -> Draft:
    field = g.choice(["population", "area_km2"])
    table = cities()
    # the larger first, so that "how many more" is positive
    a, b = sorted(g.sample(sorted(table), 2), key=lambda c: -table[c][field])
    first, second = (
        _call("lookup_city", f"look up the {FIELD_WORDS[field]} of {c}", city=c, field=field)
        for c in (a, b)
    )
    va, vb = _run(first), _run(second)
    if field == "population":
        q = f"How many more people live in {a} than in {b}? Use the city table and the calculator."
        expr, why = f"{va} - {vb}", "subtract the two populations"
    else:
        q = f"What is the combined area of {a} and {b} in square kilometres? Use the city table and the calculator."
        expr, why = f"{va} + {vb}", "add the two areas"
    third = _call("calculate", why, expression=expr)
    return Draft(q, [first, second, third], _run(third), "number")


def date_chain(g: random.Random) -> Draft:
    d, n = _date(g), g.randint(2, 400)
    first = _call("add_days", f"find the date {n} days after {d}", date=d, days=n)
    second = _call("weekday", "find the weekday of that date", date=_run(first))
    q = f"What day of the week is it {n} days after {d}?"
    return Draft(q, [first, second], _run(second), "weekday")


TYPES: dict[str, Callable[[random.Random], Draft]] = {
    "calc": calc,
    "convert": convert,
    "date": date,
    "lookup": lookup,
    "lookup_convert": lookup_convert,
    "lookup_calc": lookup_calc,
    "date_chain": date_chain,
}
