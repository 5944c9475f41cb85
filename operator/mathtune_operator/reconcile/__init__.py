"""One reconcile pass of a run: observe its current stage, record, act.

Level-triggered: everything is derived from the run's status, its Jobs and
their pods, so a pass may be repeated or interrupted at any point (operator
restart) without creating anything twice: names are deterministic and
creation tolerates "already exists". Stage results come from the stage pod's
termination message; the operator never reads the work volume.

`run_pass` returns the new status and the Events to post; the kopf handler
writes both. It does I/O only through `children.Cluster`.

The pass, module by module, in the order it runs:

- `lifecycle`: `run_pass`, the pass as its steps;
- `passes`: its settings, its context, the Step a stage's case decides, what it returns;
- `stage_step`: the first unfinished stage observes its Job and pods and picks its case;
- `start`: a stage's objects created, its PodGroup, the run's suspend carried to its Job;
- `active`: a stage whose attempt lives (running, retrying, suspended, queued in Kueue);
- `progress_status`: status.progress from the stage pod's log lines;
- `retry`: multi-node training restarted whole, a stage whose result was lost run again;
- `outcome`: a stage succeeded or failed, the run succeeded;
- `publish`: the status the pass writes, and the run's metrics;
- `ttl`, `requeue`: when the next pass is due with no event; ended runs' Jobs deleted;
- `timing`: times as the status writes them.
"""
from .active import QUEUED_IN_KUEUE
from .lifecycle import run_pass
from ..types import Event
from .passes import Pass, Settings, Step
from .retry import RANK_FAILED
from .timing import iso, norm_time, parse_time

__all__ = ["Event", "Pass", "QUEUED_IN_KUEUE", "RANK_FAILED", "Settings", "Step", "iso", "norm_time", "parse_time",
           "run_pass"]
