"""Stage results: the JSON a stage writes as its termination message
(docs/contract.md §3), turned into a one-line summary and `status.results`. Pure."""
import json
from typing import Any, Dict, Optional, Tuple
from .types import Obj


class ResultError(ValueError):
    """The termination message is not the result JSON the contract promises."""


def parse(message: Optional[str], stage: str) -> Dict[str, Any]:
    """The result object in a termination message.

    The stage writes exactly one JSON object; with FallbackToLogsOnError a
    crashed stage leaves its log tail instead, whose last JSON line (the
    stage also prints its result as the last stdout line) is used if any.
    """
    text = (message or "").strip()
    if not text:
        raise ResultError(f"stage {stage} left no termination message")
    candidates = [text] + [line.strip() for line in reversed(text.splitlines())]
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ResultError(f"stage {stage} termination message is not a JSON object: {text[-300:]!r}")


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> Optional[int]:
    number = _num(value)
    return int(number) if number is not None else None


def _clean(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _size(value: Optional[int]) -> str:
    if value is None:
        return "?"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def _fmt(x: Optional[float], digits: int = 2) -> str:
    return "?" if x is None else f"{x:.{digits}f}"


def _best(epochs: Dict[str, Obj], key: str) -> Tuple[Optional[str], Optional[Obj]]:
    best_key, best = None, None
    for epoch, scores in epochs.items():
        value = _num((scores or {}).get(key))
        # best is only ever a row whose value was a number
        if value is not None and (best is None or value > (_num(best.get(key)) or 0.0)):
            best_key, best = epoch, scores
    return best_key, best


def display(out: Dict[str, Any]) -> Dict[str, str]:
    """status.display: the printer columns' text (JSONPath cannot format a
    number): F1/EM with two decimals, accuracy as a percentage."""
    shown = {}
    for key in ("f1", "em"):
        if _num(out.get(key)) is not None:
            shown[key] = f"{_num(out[key]):.2f}"
    accuracy = _num(out.get("mathAccuracy"))
    if accuracy is not None:
        shown["mathAccuracy"] = f"{accuracy * 100:.1f}%"
    return shown


def final_summary(out: Dict[str, Any]) -> str:
    """PROGRESS once the run is done: what it found, not the last stage's line."""
    parts = [f"best epoch {out['bestEpoch']}"] if _int(out.get("bestEpoch")) is not None else []
    shown = display(out)
    if "f1" in shown:
        parts.append(f"F1 {shown['f1']}")
    if "mathAccuracy" in shown:
        parts.append(f"acc {shown['mathAccuracy']}")
    if isinstance(out.get("gatePassed"), bool):
        parts.append("gate passed" if out["gatePassed"] else "gate failed")
    return "done: " + ", ".join(parts) if parts else "done"


GIB = 2 ** 30


def volume_shortfall(out: Dict[str, Any]) -> Optional[str]:
    """Why the work volume will not hold what the later stages write, from
    prepare's estimate (status.results.volume), or None when it will."""
    volume = out.get("volume") or {}
    needed, free = _int(volume.get("neededBytes")), _int(volume.get("freeBytes"))
    if needed is None or free is None or needed <= free:
        return None
    return (f"the work volume has {free / GIB:.1f} GiB free, and tokenize, train and merge will write about "
            f"{needed / GIB:.1f} GiB (docs/contract.md: disk): training would fail at a checkpoint save. Free space "
            f"on the claim, or run again with a larger spec.storage.size")


def _leakage(leak: Dict[str, Any]) -> Dict[str, Any]:
    counts = {k: {str(s): _int(n) for s, n in (leak.get(k) or {}).items() if _int(n) is not None}
              for k in ("bySource", "against")}
    unchecked = {str(k): str(v)[:300] for k, v in (leak.get("unchecked") or {}).items()}
    return _clean({"mode": str(leak.get("mode") or ""), "exact": _int(leak.get("exact")),
                   "near": _int(leak.get("near")), "dropped": _int(leak.get("dropped")),
                   "bySource": counts["bySource"] or None, "against": counts["against"] or None,
                   "unchecked": unchecked or None})


def _closest(out: Dict[str, Any]) -> str:
    nearest = out.get("closestToGate") or {}
    if out.get("gatePassed") or nearest.get("epoch") is None:
        return ""
    return f" (closest: epoch {nearest['epoch']}, F1 {_fmt(nearest.get('f1Short'))} below)"


def leakage_message(leak: Dict[str, Any]) -> Optional[str]:
    """The Event a run gets when training rows were found among the scored ones (None: none were)."""
    found = (leak.get("exact") or 0) + (leak.get("near") or 0)
    if not found:
        return None
    where = ", ".join(f"{n} in {s}" for s, n in sorted((leak.get("bySource") or {}).items()))
    against = ", ".join(sorted(leak.get("against") or {}))
    action = {"drop": f"{leak.get('dropped', 0)} dropped before training",
              "warn": "kept (spec.data.leakage: warn): scores on those rows measure memory"}.get(
        str(leak.get("mode")), "")
    return (f"{found} training rows are also rows {against} will score ({leak.get('exact', 0)} exact, "
            f"{leak.get('near', 0)} near-duplicates; {where}): {action}")


def _data_cache(stage: str, result: Dict[str, Any], out: Dict[str, Any]) -> str:
    """status.results.dataCache from prepare's or tokenize's `cacheKey` and `reused` (the data
    recipe cache of the work volume, docs/contract.md); the summary's words when it reused."""
    key, reused = result.get("cacheKey"), result.get("reused")
    if not isinstance(key, str):
        return ""
    known = out.get("dataCache")
    cache: Dict[str, Any] = dict(known) if isinstance(known, dict) and known.get("key") == key else {"key": key}
    built_by = reused.get("from") if isinstance(reused, dict) and isinstance(reused.get("from"), str) else None
    cache[f"{stage}Reused"] = isinstance(reused, dict)
    if built_by:
        cache["builtBy"] = built_by
    out["dataCache"] = cache
    return f"; reused data of run {built_by}" if built_by else ""


def apply(stage: str, result: Dict[str, Any], current: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """(summary line, status.results updated with this stage's result)."""
    out = json.loads(json.dumps(current or {}))  # deep copy
    epochs = out.setdefault("epochs", {})
    if stage == "prepare":
        rows = result.get("rows") or {}
        classified = {str(k): _int(v) for k, v in (rows.get("classified") or {}).items() if _int(v) is not None}
        out["rows"] = _clean({"read": _int(rows.get("read")), "bad": _int(rows.get("bad")),
                              "deduped": _int(rows.get("deduped")), "duplicates": _int(rows.get("duplicates")),
                              "sampled": _int(rows.get("sampled")), "trained": _int(rows.get("trained")),
                              "other": _int(rows.get("other")), "classified": classified or None})
        summary = (f"read {rows.get('read', '?')}, bad {rows.get('bad', 0)}, deduped {rows.get('deduped', '?')}, "
                   f"{len(classified)} types, sampled {rows.get('sampled', '?')}")
        mixed = [_clean({"name": str(m.get("name")), "drawn": _int(m.get("drawn")), "rows": _int(m.get("rows"))})
                 for m in result.get("mix") or [] if isinstance(m, dict)]
        if mixed:
            out["mix"] = mixed
            summary += ", mixed in " + ", ".join(f"{m.get('rows', '?')} {m['name']}" for m in mixed)
        leak = result.get("leakage")
        if isinstance(leak, dict):
            out["leakage"] = _leakage(leak)
            found = (out["leakage"].get("exact") or 0) + (out["leakage"].get("near") or 0)
            if found:
                summary += f"; {found} rows also in the scored sets ({out['leakage'].get('dropped', 0)} dropped)"
        disk = result.get("disk") or {}
        if _int(disk.get("neededBytes")) is not None and _int(disk.get("freeBytes")) is not None:
            out["volume"] = {"neededBytes": _int(disk["neededBytes"]), "freeBytes": _int(disk["freeBytes"])}
        summary += _data_cache(stage, result, out)
    elif stage == "tokenize":
        out["tokenize"] = _clean({"rows": _int(result.get("rows")), "seqLength": _int(result.get("seqLength")),
                                  "truncated": _int(result.get("truncated")),
                                  "paddingShare": _num(result.get("paddingShare")),
                                  "shards": _int(result.get("shards"))})
        summary = (f"{result.get('rows', '?')} rows, seq {result.get('seqLength', '?')}, "
                   f"{result.get('shards', '?')} shards, padding {_fmt(_num(result.get('paddingShare')))}")
        summary += _data_cache(stage, result, out)
    elif stage == "train":
        trainable, total = _int(result.get("trainableParams")), _int(result.get("totalParams"))
        out.update(_clean({"steps": _int(result.get("steps")), "finalLoss": _num(result.get("finalLoss")),
                           "trainableParams": trainable, "totalParams": total,
                           "checkpoints": [_int(e) for e in result.get("checkpoints") or [] if _int(e)] or None}))
        if trainable is not None and total:
            out["lowParamRatio"] = trainable / total
        summary = (f"{result.get('epochs', '?')} epochs, {result.get('steps', '?')} steps, "
                   f"loss {_fmt(_num(result.get('finalLoss')), 4)}, trainable {trainable} of {total}")
        origin = result.get("resumedFrom")
        if isinstance(origin, dict) and _int(origin.get("epoch")) is not None:
            # A retry: say it continued, and from which save, so nobody has to read its log.
            summary += f", resumed after epoch {_int(origin['epoch'])} (step {_int(origin.get('step'))})"
    elif stage == "merge":
        artifacts = out.setdefault("artifacts", {})
        for key in ("adapter", "merged"):
            if isinstance(result.get(key), str):
                artifacts[key] = result[key]
        summary = f"merged epochs {result.get('epochs', [])}"
    elif stage == "evaluate":
        base = result.get("base") or {}
        out.update(_clean({"baseF1": _num(base.get("f1")), "baseEm": _num(base.get("em"))}))
        for epoch, scores in (result.get("epochs") or {}).items():
            row = epochs.setdefault(str(epoch), {})
            row.update(_clean({"f1": _num((scores or {}).get("f1")), "em": _num((scores or {}).get("em"))}))
        best_key, best = _best(epochs, "f1")
        if best:
            # Until report picks an epoch, the columns show the best so far.
            out["f1"], out["em"] = _num(best.get("f1")), _num(best.get("em"))
        summary = (f"base F1 {_fmt(_num(base.get('f1')))} EM {_fmt(_num(base.get('em')))}; best epoch {best_key}: "
                   f"F1 {_fmt(out.get('f1'))} EM {_fmt(out.get('em'))}")
    elif stage == "predict":
        for epoch, scores in (result.get("epochs") or {}).items():
            row = epochs.setdefault(str(epoch), {})
            row.update(_clean({"accuracy": _num((scores or {}).get("accuracy"))}))
        if _num(result.get("accuracy")) is not None:
            out["mathAccuracy"] = _num(result["accuracy"])
        best_key, best = _best(epochs, "accuracy")
        if best and "mathAccuracy" not in out:
            out["mathAccuracy"] = _num(best.get("accuracy"))
        if best_key is not None:
            per_type = ((result.get("epochs") or {}).get(best_key) or {}).get("perType") or {}
            if per_type:
                out["perType"] = {str(k): _num(v) for k, v in per_type.items() if _num(v) is not None}
        summary = f"best epoch {best_key}: accuracy {_fmt(out.get('mathAccuracy'), 4)}"
    elif stage == "report":
        best_epoch = _int(result.get("bestEpoch"))
        trainable, total = _int(result.get("trainableParams")), _int(result.get("totalParams"))
        out.update(_clean({"bestEpoch": best_epoch, "f1": _num(result.get("f1")), "em": _num(result.get("em")),
                           "mathAccuracy": _num(result.get("mathAccuracy")),
                           "gatePassed": result.get("gatePassed") if isinstance(result.get("gatePassed"), bool)
                           else None,
                           "trainableParams": trainable, "totalParams": total,
                           "lowParamRatio": _num(result.get("lowParamRatio")),
                           "baseAccuracy": _num(result.get("baseAccuracy")),
                           "mathAccuracyContestRule": _num(result.get("mathAccuracyContestRule")),
                           "baseAccuracyContestRule": _num(result.get("baseAccuracyContestRule")),
                           "mathAccuracyTruth": _num(result.get("mathAccuracyTruth")),
                           "baseAccuracyTruth": _num(result.get("baseAccuracyTruth"))}))
        passed = [_int(e) for e in result.get("passedEpochs") or [] if _int(e) is not None]
        if isinstance(result.get("passedEpochs"), list):
            out["passedEpochs"] = passed
        if isinstance(result.get("perType"), dict):
            out["perType"] = {str(k): _num(v) for k, v in result["perType"].items() if _num(v) is not None}
        nearest = result.get("closestToGate")
        if isinstance(nearest, dict) and _int(nearest.get("epoch")) is not None:
            out["closestToGate"] = _clean({"epoch": _int(nearest.get("epoch")), "f1": _num(nearest.get("f1")),
                                           "em": _num(nearest.get("em")), "f1Short": _num(nearest.get("f1Short")),
                                           "emShort": _num(nearest.get("emShort"))})
        for field in ("perTypeContestRule", "perTypeTruth"):
            if isinstance(result.get(field), dict) and result[field]:
                out[field] = {str(k): _num(v) for k, v in result[field].items() if _num(v) is not None}
        if isinstance(result.get("artifacts"), dict):
            out.setdefault("artifacts", {}).update({str(k): str(v) for k, v in result["artifacts"].items()})
        ratio = out.get("lowParamRatio")
        contest_rule = out.get("mathAccuracyContestRule")   # absent from a report of an earlier version
        contest = "" if contest_rule is None else f" (contest rule {_fmt(contest_rule, 4)})"
        summary = (f"epoch {best_epoch}: F1 {_fmt(out.get('f1'))} EM {_fmt(out.get('em'))} "
                   f"accuracy {_fmt(out.get('mathAccuracy'), 4)}{contest}, gate "
                   f"{'passed' if out.get('gatePassed') else 'failed'}{_closest(out)}, "
                   f"low-param ratio {'?' if ratio is None else f'{ratio * 100:.4f}%'}")
    elif stage == "export":
        if result.get("skipped"):
            summary = f"not exported: {result.get('reason') or 'skipped'}"
        else:
            rows = [_clean({"format": str(a.get("format")), "epoch": _int(result.get("epoch")),
                            "location": a.get("location") if isinstance(a.get("location"), str) else None,
                            "destination": a.get("destination") if isinstance(a.get("destination"), str) else None,
                            "bytes": _int(a.get("bytes")), "files": _int(a.get("files")),
                            "sha256": a.get("sha256") if isinstance(a.get("sha256"), str) else None})
                    for a in result.get("artifacts") or [] if isinstance(a, dict)]
            out["exports"] = rows
            summary = f"epoch {result.get('epoch', '?')} exported as " + ", ".join(
                f"{r['format']} ({_size(r.get('bytes'))})" for r in rows)
    else:
        summary = "done"
    if not epochs:
        out.pop("epochs")
    return summary[:1000], out
