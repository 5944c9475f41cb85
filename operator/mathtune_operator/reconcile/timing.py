"""Times as the status writes them (RFC 3339, UTC, whole seconds) and as
the API server and the client write them. Pure."""
import datetime as _dt
from typing import Optional


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Optional[str]) -> Optional[float]:
    """RFC 3339 as the API server writes it ('...Z') or as the client
    serialises datetimes ('...+00:00')."""
    if not value:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


def norm_time(value: Optional[str], fallback: str) -> str:
    ts = parse_time(value)
    return iso(ts) if ts is not None else fallback
