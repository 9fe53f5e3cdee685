"""Parsing of `resource.Quantity` strings ("500m", "1Gi", "2", "1e3"), for comparisons and
milli-values (`MilliValue`), and the canonical strings of whole nano-units and bytes, as
`Quantity.String()` writes them."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"([+-]?[0-9.]+)((?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units; unparseable input raises ValueError."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(value.strip())
    if not match or match.group(3) not in _SUFFIXES:
        raise ValueError(f"unparseable quantity {value!r}")
    number, exponent, suffix = match.groups()
    try:
        return Decimal(number + exponent) * _SUFFIXES[suffix]
    except InvalidOperation as exc:
        raise ValueError(f"unparseable quantity {value!r}") from exc


def milli_value(value: str | int | float) -> int:
    """The quantity in thousandths, rounded up, as `resource.Quantity.MilliValue`."""
    return math.ceil(parse_quantity(value) * 1000)


def is_quantity(value: str | int | float) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


DECIMAL_SUFFIXES = ("n", "u", "m", "", "k", "M", "G", "T", "P", "E")
BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def format_nanos(nanos: int) -> str:
    """A decimal quantity of `nanos` billionths (CPU in nanocores), canonical: the largest
    suffix that keeps it whole (`4523124n`, `5m`, `2`)."""
    if nanos == 0:
        return "0"
    value, step = nanos, 0
    while value % 1000 == 0 and step < len(DECIMAL_SUFFIXES) - 1:
        value, step = value // 1000, step + 1
    return f"{value}{DECIMAL_SUFFIXES[step]}"


def format_binary(size: int) -> str:
    """A binary quantity of `size` bytes, canonical: `13688Ki`, `6Mi`, or plain bytes under
    1Ki or when no power of 1024 divides it."""
    if -1024 < size < 1024:
        return str(size)
    value, step = size, 0
    while value % 1024 == 0 and step < len(BINARY_SUFFIXES) - 1:
        value, step = value // 1024, step + 1
    return f"{value}{BINARY_SUFFIXES[step]}"


def format_quantity(value: Decimal, *, binary: bool = False) -> str:
    """A computed quantity (a sum of requests, a quota's usage) canonical as Go writes it: in
    binary suffixes when its operands were binary (`256Mi`), else in decimal ones (`1500m`)."""
    if binary and value == value.to_integral_value():
        return format_binary(int(value))
    nanos = value * Decimal(10**9)
    if nanos == nanos.to_integral_value():
        return format_nanos(int(nanos))
    return format(value.normalize(), "f")


def is_binary(text: str | int | float) -> bool:
    """Written with a binary suffix (`Ki` ... `Ei`)."""
    return isinstance(text, str) and text.strip().endswith("i")
