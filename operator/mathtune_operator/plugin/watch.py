"""`submit --watch`: a live view of a run until it ends, and the exit code of its outcome."""
import time
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from . import errors, render
from .kube import Cluster


def outcome(run: Dict[str, Any]) -> Optional[int]:
    """The exit code of a finished run, None while it runs."""
    status = run.get("status") or {}
    if status.get("phase") == "Failed":
        return errors.RUN_FAILED
    if status.get("phase") == "Succeeded":
        return errors.SUCCEEDED if (status.get("results") or {}).get("gatePassed", True) else errors.GATE_FAILED
    return None


def progress_line(run: Dict[str, Any]) -> str:
    progress = (run.get("status") or {}).get("progress") or {}
    parts = []
    if progress.get("epochs"):
        parts.append(f"epoch {progress.get('epoch', '?')}/{progress['epochs']}")
    if progress.get("steps"):
        parts.append(f"step {progress.get('step', '?')}/{progress['steps']}")
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4f}")
    if progress.get("etaSeconds") is not None:
        eta = int(progress["etaSeconds"])
        parts.append(f"ETA {eta // 60}m{eta % 60:02d}s")
    return ", ".join(parts) or progress.get("summary") or ""


def view(run: Dict[str, Any], last_event: str) -> Group:
    now = datetime.now(timezone.utc)
    return Group(Text(render.headline(run), style="bold"), Text(progress_line(run)),
                 render.stages_table(run, now), Text(f"last event: {last_event}" if last_event else ""))


FINAL_EVENTS = ("RunSucceeded", "StageFailed")


def watch(cluster: Cluster, name: str, console: Console, poll: float = 2.0, final_wait: float = 10.0) -> int:
    last = ""
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            run = cluster.run(name)
            events = cluster.events(name)
            if events:
                last = f"{events[-1].reason}: {events[-1].message}"
            code = outcome(run)
            if code is not None:
                # The operator posts Events in the background: give the run's last one a moment to
                # arrive, so the final screen ends with it.
                deadline = time.monotonic() + final_wait
                while not any(e.reason in FINAL_EVENTS for e in events) and time.monotonic() < deadline:
                    time.sleep(0.5)
                    events = cluster.events(name)
                final = [e for e in events if e.reason in FINAL_EVENTS]
                if final:
                    last = f"{final[-1].reason}: {final[-1].message}"
                live.update(view(run, last), refresh=True)
                return code
            live.update(view(run, last), refresh=True)
            time.sleep(poll)
