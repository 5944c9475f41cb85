"""A trial as a MathFinetune: the object the sweep makes, and the record it
keeps of it, read from the run's own status. Pure."""
import json
from typing import Any, Dict, Optional

from mathtune_api.sweep import MathFinetuneSweepSpec
from mathtune_api.sweep_values import decode, trial_spec

from .. import names
from .. import status as st
from ..types import Obj
from .study import Asked

OBJECTIVE_FIELD = {"mathAccuracy": "mathAccuracy", "mathAccuracyContestRule": "mathAccuracyContestRule",
                   "f1": "f1", "em": "em"}


def params_text(params: Dict[str, Any]) -> Dict[str, str]:
    """Optuna's values by path, as the status keeps them (JSON text)."""
    return {path: json.dumps(value) for path, value in params.items()}


def trial_object(sweep: Obj, spec: MathFinetuneSweepSpec, asked: Asked) -> Obj:
    """The MathFinetune of one trial: the template with the trial's values,
    owned by the sweep (deleting the sweep deletes its trials), labelled so
    the sweep finds them, its values in an annotation so a trial made just
    before a crash is recorded as it was made."""
    meta = sweep["metadata"]
    values = {path: decode(path, value) for path, value in asked.params.items()}
    annotations = {names.ANNOTATION_PARAMS: json.dumps(params_text(asked.params), sort_keys=True)}
    if asked.grid_id is not None:
        annotations[f"{names.ANNOTATION_PREFIX}/grid-id"] = str(asked.grid_id)
    return {
        "apiVersion": names.API_VERSION, "kind": names.KIND,
        "metadata": {
            "name": names.trial(meta["name"], asked.number), "namespace": meta.get("namespace"),
            "labels": {names.LABEL_SWEEP: meta["name"], names.LABEL_TRIAL: str(asked.number),
                       "app.kubernetes.io/name": "mathtune"},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": names.API_VERSION, "kind": names.SWEEP_KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": trial_spec(spec.template.wire(), values),
    }


def gate_f1(spec: MathFinetuneSweepSpec, results: Obj) -> Optional[float]:
    """The F1 the trial's gate asked for: a share of the base model's in relative mode."""
    gate = spec.template.evaluation.gate
    if gate.mode == "absolute":
        return gate.f1
    base = results.get("baseF1")
    return None if base is None else round(gate.f1 * float(base), 4)


def observe(record: Obj, run: Optional[Obj], spec: MathFinetuneSweepSpec) -> Obj:
    """The record updated from its run's status (a record whose run is gone
    keeps what it had). No key is null: records are items of a list the API
    server checks whole."""
    out = _observe(record, run, spec)
    return {key: value for key, value in out.items() if value is not None}


def _observe(record: Obj, run: Optional[Obj], spec: MathFinetuneSweepSpec) -> Obj:
    out = dict(record)
    if run is None:
        if out.get("state") == "Running":
            out.update(state="Failed", message="its MathFinetune was deleted before it finished")
        return out
    status = run.get("status") or {}
    phase = status.get("phase")
    results = status.get("results") or {}
    losses = (status.get("progress") or {}).get("epochLoss")
    if losses:
        out["epochLoss"] = dict(losses)
    if phase not in ("Succeeded", "Failed"):
        pruned = ((run.get("metadata") or {}).get("annotations") or {}).get(names.ANNOTATION_PRUNED)
        if pruned:
            out.update(state="Pruned", message=pruned)
        else:
            out["state"] = "Running"
        return out
    out.pop("message", None)  # a pruned trial resumed by hand and finished: its run's outcome stands
    out["completionTime"] = status.get("completionTime")
    if phase == "Failed":
        ready = st.get_condition(status.get("conditions") or [], "Ready") or {}
        out.update(state="Failed", message=str(ready.get("message") or "the run failed")[:4000])
        return out
    for key in ("mathAccuracy", "mathAccuracyContestRule", "f1", "em", "gatePassed", "bestEpoch"):
        if results.get(key) is not None:
            out[key] = results[key]
    out["gateF1"] = gate_f1(spec, results)
    out["epochs"] = {epoch: {k: v for k, v in (("accuracy", row.get("accuracy")), ("f1", row.get("f1")))
                             if v is not None}
                     for epoch, row in (results.get("epochs") or {}).items()}
    objective = results.get(OBJECTIVE_FIELD[spec.objective.metric])
    out["objective"] = objective
    passed = bool(results.get("gatePassed")) or not spec.constraints.gate
    if objective is None:
        out.update(state="Failed", message=f"the run reported no {spec.objective.metric}")
    else:
        out["state"] = "Succeeded" if passed else "Infeasible"
    return out


def record_from_object(run: Obj) -> Obj:
    """A trial made but not yet in the status (the pass that made it did not
    get to write it): its record, from the annotations it was made with."""
    meta = run.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    record: Obj = {"number": int((meta.get("labels") or {})[names.LABEL_TRIAL]), "name": meta["name"],
                   "params": json.loads(annotations.get(names.ANNOTATION_PARAMS) or "{}"), "state": "Running",
                   "startTime": meta.get("creationTimestamp")}
    grid = annotations.get(f"{names.ANNOTATION_PREFIX}/grid-id")
    if grid is not None:
        record["gridId"] = int(grid)
    return record
