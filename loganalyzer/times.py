"""Times given by users: ISO 8601 (naive = UTC) or an age such as ``24h`` / ``7d``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: datetime | str | None, now: datetime | None = None) -> datetime | None:
    """A timezone-aware datetime from a datetime, ISO 8601 text (naive = UTC) or an age such as
    ``24h``/``7d`` counted back from ``now`` (default: the wall clock).

    :raises ValueError: text that is neither.
    """
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    match = _RELATIVE.match(value.strip())
    if match:
        now = now or datetime.now(UTC)
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use ISO 8601 (2026-11-27T06:00Z) or an age like 24h, 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
