"""What the plugin prints, built from a run's resource: pure functions returning
rich renderables (or plain data for -o json|yaml), so each screen is tested
without a terminal."""
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

Run = Dict[str, Any]


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _score(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def _time(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def duration(start: Optional[str], end: Optional[str], now: datetime) -> str:
    began, ended = _time(start), _time(end) or now
    if began is None:
        return "-"
    seconds = int((ended - began).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def headline(run: Run) -> str:
    status = run.get("status") or {}
    progress = (status.get("progress") or {}).get("summary") or ""
    return (f"{run['metadata']['name']}: {status.get('phase', 'Pending')}, stage {status.get('stage', '-')}"
            + (f", {progress}" if progress else ""))


def stages_table(run: Run, now: datetime) -> Table:
    table = Table(title="stages", title_justify="left")
    for column in ("stage", "state", "duration", "attempts", "summary"):
        table.add_column(column)
    for row in (run.get("status") or {}).get("stages") or []:
        table.add_row(row["name"], row.get("state", "-"), duration(row.get("startTime"), row.get("completionTime"), now),
                      str(row.get("attempts", "-")), row.get("message") or row.get("summary") or "")
    return table


def conditions_table(run: Run) -> Table:
    table = Table(title="conditions", title_justify="left")
    for column in ("type", "status", "reason", "message"):
        table.add_column(column)
    for c in (run.get("status") or {}).get("conditions") or []:
        table.add_row(c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
    return table


def events_table(events: Sequence[Any], last: int = 5) -> Table:
    table = Table(title=f"last {last} events", title_justify="left")
    for column in ("type", "reason", "message"):
        table.add_column(column)
    for e in list(events)[-last:]:
        table.add_row(e.type or "", e.reason or "", e.message or "")
    return table


def status_view(run: Run, events: Sequence[Any], now: datetime) -> Group:
    return Group(Text(headline(run), style="bold"), stages_table(run, now), conditions_table(run),
                 events_table(events))


def results_data(run: Run) -> Dict[str, Any]:
    """The results a person compares, as data (-o json|yaml)."""
    results = (run.get("status") or {}).get("results") or {}
    keys = ("bestEpoch", "gatePassed", "mathAccuracy", "mathAccuracyContestRule", "baseAccuracy",
            "baseAccuracyContestRule", "perType", "perTypeContestRule", "f1", "em", "baseF1", "baseEm", "gate",
            "passedEpochs", "closestToGate", "exports", "artifacts")
    return {"name": run["metadata"]["name"], "phase": (run.get("status") or {}).get("phase"),
            **{k: results[k] for k in keys if k in results}}


def results_view(run: Run) -> Group:
    data = results_data(run)
    if data.get("bestEpoch") is None:
        return Group(Text(f"{data['name']}: no results yet ({data.get('phase') or 'Pending'})"))
    gate = "passed" if data.get("gatePassed") else "FAILED"
    head = Text(f"{data['name']}: best epoch {data['bestEpoch']}, original-ability gate {gate}", style="bold")
    scores = Table(title="scores", title_justify="left")
    for column in ("metric", "base", "fine-tuned"):
        scores.add_column(column)
    scores.add_row("math accuracy (careful reader)", _pct(data.get("baseAccuracy")), _pct(data.get("mathAccuracy")))
    scores.add_row("math accuracy (contest rule)", _pct(data.get("baseAccuracyContestRule")),
                   _pct(data.get("mathAccuracyContestRule")))
    scores.add_row("SQuAD F1", _score(data.get("baseF1")), _score(data.get("f1")))
    scores.add_row("SQuAD EM", _score(data.get("baseEm")), _score(data.get("em")))
    per_type = Table(title="math accuracy per type", title_justify="left")
    for column in ("type", "careful reader", "contest rule"):
        per_type.add_column(column)
    contest = data.get("perTypeContestRule") or {}
    for kind, value in sorted((data.get("perType") or {}).items()):
        per_type.add_row(kind, _pct(value), _pct(contest.get(kind)))
    parts: List[Any] = [head, scores, per_type]
    if data.get("exports"):
        exports = Table(title="exports", title_justify="left")
        for column in ("format", "epoch", "location", "size", "sha256 (SHA256SUMS)"):
            exports.add_column(column)
        for row in data["exports"]:
            exports.add_row(row["format"], str(row.get("epoch", "-")), row.get("destination") or row.get("location", ""),
                            f"{row.get('bytes', 0) / 1e6:.1f} MB", (row.get("sha256") or "")[:16])
        parts.append(exports)
    return Group(*parts)
