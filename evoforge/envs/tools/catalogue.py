"""The shipped APIs of the ``tools`` environment: a calculator, unit conversion, a calendar and a
lookup in a shipped table of (made-up) cities. All are pure functions of their arguments.

The calculator reads arithmetic only (numbers, + - * / // % **, parentheses) through Python's
AST; it never runs code, so it needs no sandbox.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import math
import operator
import re
from functools import lru_cache
from pathlib import Path

from evoforge.envs.multiturn import Tool, ToolError, object_schema

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
LIMIT = 1e15


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise ToolError("exponent or base too large")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        if isinstance(value, complex) or abs(value) > LIMIT:
            raise ToolError("the result is out of range")
        return value
    raise ToolError(
        "only numbers, + - * / // % ** and parentheses are allowed, e.g. '(12 + 3) * 4'"
    )


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression (ToolError when it is not one)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read {expression!r} as arithmetic") from None
    return _eval(tree.body)


def tidy(x: float) -> float | int:
    """Integral values as int, others rounded to 6 decimals (results the model can copy)."""
    if isinstance(x, int) or (math.isfinite(x) and x == int(x) and abs(x) < LIMIT):
        return int(x)
    return round(x, 6)


def calculate(expression: str) -> float | int:
    return tidy(evaluate(expression))


# unit -> (dimension, factor to the base unit); temperatures are handled apart
UNITS = {
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "mi": ("length", 1609.344),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
    "c": ("temperature", 0.0),
    "f": ("temperature", 0.0),
    "k": ("temperature", 0.0),
}
UNIT_WORDS = {
    "m": "metres",
    "km": "kilometres",
    "mi": "miles",
    "ft": "feet",
    "in": "inches",
    "kg": "kilograms",
    "g": "grams",
    "lb": "pounds",
    "oz": "ounces",
    "l": "litres",
    "ml": "millilitres",
    "gal": "US gallons",
    "c": "degrees Celsius",
    "f": "degrees Fahrenheit",
    "k": "kelvin",
}


def _to_kelvin(v: float, u: str) -> float:
    return v + 273.15 if u == "c" else (v - 32) * 5 / 9 + 273.15 if u == "f" else v


def _from_kelvin(v: float, u: str) -> float:
    return v - 273.15 if u == "c" else (v - 273.15) * 9 / 5 + 32 if u == "f" else v


def convert_units(value: float, from_unit: str, to_unit: str) -> float | int:
    (d1, f1), (d2, f2) = UNITS[from_unit], UNITS[to_unit]
    if d1 != d2:
        raise ToolError(f"cannot convert {d1} ({from_unit}) to {d2} ({to_unit})")
    if d1 == "temperature":
        return tidy(round(_from_kelvin(_to_kelvin(value, from_unit), to_unit), 4))
    return tidy(round(value * f1 / f2, 4))


def _date(text: str) -> dt.date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            return dt.date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise ToolError(f"{text!r} is not a date; write dates as YYYY-MM-DD")


def add_days(date: str, days: int) -> str:
    try:
        return (_date(date) + dt.timedelta(days=int(days))).isoformat()
    except OverflowError:
        raise ToolError("the date is out of range") from None


def weekday(date: str) -> str:
    return _date(date).strftime("%A")


def days_between(start: str, end: str) -> int:
    return (_date(end) - _date(start)).days


FIELDS = ["country", "population", "elevation_m", "area_km2", "founded"]
FIELD_WORDS = {
    "country": "country",
    "population": "population",
    "elevation_m": "elevation in metres",
    "area_km2": "area in square kilometres",
    "founded": "founding year",
}


@lru_cache(maxsize=1)
def cities() -> dict[str, dict[str, str | int | float]]:
    """The shipped city table: name -> {field: value}."""
    with open(Path(__file__).with_name("cities.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        out[r["city"]] = {
            "country": r["country"],
            "population": int(r["population"]),
            "elevation_m": int(r["elevation_m"]),
            "area_km2": float(r["area_km2"]),
            "founded": int(r["founded"]),
        }
    return out


def lookup_city(city: str, field: str) -> str | int | float:
    table = cities()
    found = next((name for name in table if name.casefold() == city.strip().casefold()), None)
    if found is None:
        raise ToolError(f"no city named {city!r} in the table")
    return table[found][field]


CATALOGUE = (
    Tool(
        "calculate",
        "Evaluate an arithmetic expression (numbers, + - * / // % ** and parentheses).",
        object_schema(expression={"type": "string", "examples": ["(12 + 3) * 4"]}),
        calculate,
    ),
    Tool(
        "convert_units",
        "Convert a value between units of length, mass, volume or temperature.",
        object_schema(value="number", from_unit=list(UNITS), to_unit=list(UNITS)),
        convert_units,
    ),
    Tool(
        "add_days",
        "The date a number of days after (or, if negative, before) a date (YYYY-MM-DD).",
        object_schema(date="string", days="integer"),
        add_days,
    ),
    Tool(
        "weekday",
        "The day of the week of a date (YYYY-MM-DD).",
        object_schema(date="string"),
        weekday,
    ),
    Tool(
        "days_between",
        "The number of days from the start date to the end date (YYYY-MM-DD).",
        object_schema(start="string", end="string"),
        days_between,
    ),
    Tool(
        "lookup_city",
        "Look up a field of a city in the city table.",
        object_schema(city="string", field=FIELDS),
        lookup_city,
    ),
)
TOOLS = {t.name: t for t in CATALOGUE}
