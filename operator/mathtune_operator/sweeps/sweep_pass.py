"""One pass over a sweep: read its trials, record how each ended, ask Optuna
for as many new ones as `parallelism` and `maxTrials` allow, and publish the
record (best trial, leaderboard, counts, conditions). Pure: the trials to
make and the trials to prune are returned, the controller acts on them."""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mathtune_api import SpecInvalid
from mathtune_api.parse import parse_sweep
from mathtune_api.sweep import MathFinetuneSweepSpec

from .. import names
from .. import status as st
from ..reconcile.timing import iso
from ..types import Event, Obj
from ..vocabulary import EventType, Phase
from .space import trial_budget
from .pruning import prune_reason
from .study import ask
from .trials import observe, params_text, record_from_object, trial_object

LEADERBOARD = 5
RESYNC = 60.0  # a pass with no event, as a safety net


@dataclass
class SweepPass:
    status: Obj
    create: List[Obj] = field(default_factory=list)
    prune: Dict[str, str] = field(default_factory=dict)  # trial name -> why: the controller suspends its run
    events: List[Event] = field(default_factory=list)
    requeue_after: Optional[float] = RESYNC


def _records(old: Obj, runs: List[Obj], spec: MathFinetuneSweepSpec) -> List[Obj]:
    """Every trial made, from the status and from the trials that exist (a
    trial made just before a crash is in the cluster but not yet the status)."""
    by_number: Dict[int, Obj] = {int(r["number"]): r for r in old.get("trials") or []}
    runs_by_number = {int((r["metadata"].get("labels") or {})[names.LABEL_TRIAL]): r for r in runs}
    for number, run in runs_by_number.items():
        by_number.setdefault(number, record_from_object(run))
    return [observe(by_number[n], runs_by_number.get(n), spec) for n in sorted(by_number)]


def _ranked(records: List[Obj], spec: MathFinetuneSweepSpec) -> List[Obj]:
    """Trials that count (passed the gate, or any finished one when the gate is off), best first."""
    done = [r for r in records if r.get("state") == "Succeeded" and r.get("objective") is not None]
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    return sorted(done, key=lambda r: (sign * float(r["objective"]), int(r["number"])))


def _leader(record: Obj) -> Obj:
    return {k: record[k] for k in ("number", "name", "objective", "mathAccuracy", "f1", "params")
            if record.get(k) is not None}


def _transition_events(old: Obj, records: List[Obj]) -> List[Event]:
    before = {int(r["number"]): r.get("state") for r in old.get("trials") or []}
    out = []
    for r in records:
        if r.get("state") == before.get(int(r["number"]), "Running") or r.get("state") == "Running":
            continue
        if r["state"] == "Succeeded":
            out.append(Event(EventType.NORMAL, "TrialSucceeded", f"trial {r['name']}: objective {r['objective']}, "
                                                                 f"gate passed"))
        elif r["state"] == "Infeasible":
            out.append(Event(EventType.NORMAL, "TrialInfeasible", f"trial {r['name']}: objective "
                                                                  f"{r.get('objective')}, but F1 {r.get('f1')} "
                                                                  f"missed the gate's {r.get('gateF1')}"))
        elif r["state"] == "Pruned":
            out.append(Event(EventType.NORMAL, "TrialPruned", f"trial {r['name']}: {r.get('message')}"[:1000]))
        else:
            out.append(Event(EventType.WARNING, "TrialFailed", f"trial {r['name']}: {r.get('message')}"[:1000]))
    return out


def _counts(records: List[Obj]) -> Obj:
    states = [r.get("state") for r in records]
    return {"running": states.count("Running"), "succeeded": states.count("Succeeded"),
            "infeasible": states.count("Infeasible"), "failed": states.count("Failed"),
            "pruned": states.count("Pruned"), "total": len(records)}


def _refused(sweep: Obj, old: Obj, exc: SpecInvalid, now: float) -> SweepPass:
    new = copy.deepcopy(old)
    message = f"the sweep cannot run: {exc.field}: {exc.expected}"
    previous = st.get_condition(old.get("conditions") or [], "Ready") or {}
    if not old.get("trials"):
        new["phase"] = Phase.FAILED
    new["conditions"] = st.set_condition(new.get("conditions") or [], "Ready", "False", "SpecInvalid", message,
                                         sweep["metadata"].get("generation"), iso(now))
    events = [] if previous.get("message") == message else [Event(EventType.WARNING, "SpecInvalid", message)]
    return SweepPass(status=new, events=events, requeue_after=None)


def sweep_pass(sweep: Obj, runs: List[Obj], now: float) -> SweepPass:
    old = sweep.get("status") or {}
    try:
        spec = parse_sweep(sweep.get("spec") or {})
    except SpecInvalid as exc:
        return _refused(sweep, old, exc, now)
    if old.get("phase") in (Phase.SUCCEEDED, Phase.FAILED) and not any(
            r.get("state") == "Running" for r in old.get("trials") or []):
        return SweepPass(status=copy.deepcopy(old), requeue_after=None)  # an ended sweep is a record

    out = SweepPass(status=copy.deepcopy(old))
    records = _records(old, runs, spec)
    for running in records:
        why = prune_reason(spec, running, records)
        if why:
            # The controller suspends its run before it writes this status, and the run's annotation
            # keeps the decision if the pass dies in between.
            out.prune[running["name"]] = why
            running.update(state="Pruned", message=why)
    out.events.extend(_transition_events(old, records))
    counts = _counts(records)
    budget = trial_budget(spec)
    stopping = counts["failed"] > spec.max_failed_trials
    if not stopping:
        for _ in range(max(0, min(spec.parallelism - counts["running"], budget - len(records)))):
            asked = ask(spec, records)
            body = trial_object(sweep, spec, asked)
            out.create.append(body)
            record: Obj = {"number": asked.number, "name": body["metadata"]["name"],
                           "params": params_text(asked.params), "state": "Running", "startTime": iso(now)}
            if asked.grid_id is not None:
                record["gridId"] = asked.grid_id
            records.append(record)
            out.events.append(Event(EventType.NORMAL, "TrialCreated", f"trial {record['name']}: " + ", ".join(
                f"{path}={text}" for path, text in record["params"].items())))
        counts = _counts(records)
    _publish(sweep, spec, out, old, records, counts, budget, stopping, now)
    return out


def refuse_trials(out: SweepPass, refused: Dict[str, str]) -> None:
    """Trials the API server would not create (a value the template's CEL
    rules refuse together with another field, e.g. lrEnd above the learning
    rate drawn): recorded as failed trials in the API server's words, which
    count against maxFailedTrials. The pass right after recounts and decides
    the phase; `out` asks for it at once."""
    if not refused:
        return
    for record in out.status.get("trials") or []:
        if record.get("name") in refused and record.get("state") == "Running":
            record.update(state="Failed", message=f"the API server refused the trial: {refused[record['name']]}"[:4000])
            out.events.append(Event(EventType.WARNING, "TrialFailed", f"trial {record['name']}: "
                                                                      f"{record['message']}"[:1000]))
    out.requeue_after = 0.0


def _publish(sweep: Obj, spec: MathFinetuneSweepSpec, out: SweepPass, old: Obj, records: List[Obj], counts: Obj,
             budget: int, stopping: bool, now: float) -> None:
    new, generation = out.status, sweep["metadata"].get("generation")
    ranked = _ranked(records, spec)
    best = _leader(ranked[0]) if ranked else None
    if best and (old.get("best") or {}).get("number") != best["number"]:
        out.events.append(Event(EventType.NORMAL, "NewBest", f"trial {best['name']} leads: "
                                                             f"{spec.objective.metric} {best['objective']}"))
    finished = counts["total"] - counts["running"]
    if stopping:
        phase = Phase.FAILED if counts["running"] == 0 else Phase.RUNNING
        message = (f"{counts['failed']} trials failed, more than maxFailedTrials {spec.max_failed_trials}: no new "
                   f"trials" + (f"; {counts['running']} still running" if counts["running"] else ""))
        reason = "TooManyFailedTrials"
    elif counts["total"] >= budget and counts["running"] == 0:
        phase = Phase.SUCCEEDED if best else Phase.FAILED
        reason = "BestFound" if best else "NoTrialPassedGate"
        message = (f"best trial {best['name']}: {spec.objective.metric} {best['objective']}" if best else
                   f"none of {counts['total']} trials passed the gate" if spec.constraints.gate else
                   f"none of {counts['total']} trials finished")
    else:
        phase, reason = Phase.RUNNING, "TrialsRunning"
        message = f"{finished} of {budget} trials done, {counts['running']} running"
    new.update(phase=phase, trials=records, counts=counts, leaderboard=[_leader(r) for r in ranked[:LEADERBOARD]],
               display={"trials": f"{finished}/{budget}", "best": best["name"] if best else None,
                        "objective": f"{best['objective']:.4g}" if best else None})
    new["best"] = best
    new.setdefault("startTime", iso(now))
    if generation is not None:
        new["observedGeneration"] = int(generation)
    conditions = st.set_condition(new.get("conditions") or [], "Ready", "True" if phase == Phase.SUCCEEDED else
                                  "False", reason, message, generation, iso(now))
    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        new.setdefault("completionTime", iso(now))
        conditions = st.set_condition(conditions, phase, "True", reason, message, generation, iso(now))
        if old.get("phase") != phase:
            out.events.append(Event(EventType.NORMAL if phase == Phase.SUCCEEDED else EventType.WARNING,
                                    f"Sweep{phase}", message))
        out.requeue_after = None
    new["conditions"] = conditions
