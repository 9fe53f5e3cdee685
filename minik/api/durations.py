"""Go's `time.Duration` as text, as `metav1.Duration` writes and reads it (`15.021s`, `1m0s`).

The resource metrics API's `window` is one (metrics-server writes it, the HPA
reads it), and kubectl prints durations in this form in its messages.
Written to the millisecond, which is as fine as minik measures.
"""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


def format_duration(seconds: float) -> str:
    """`time.Duration.String()` to the millisecond: `500ms`, `15.021s`, `1m0.5s`, `1h2m3s`."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def parse_duration(text: str) -> float:
    """`time.ParseDuration` in seconds (`0`, `15.012s`, `1m0s`, `500ms`); ValueError if not one."""
    if text == "0":
        return 0.0
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"time: invalid duration {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
