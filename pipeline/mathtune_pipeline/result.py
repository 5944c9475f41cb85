"""The stage result: one small JSON object, the stage's last act.

It goes to the Kubernetes termination message (capped at 4 KiB by the kubelet,
so we keep well under) and as the last stdout line, so the operator never
needs to read the work volume.
"""
import json
import os
import sys
from typing import Any, Dict, Optional

TERMINATION_LOG = "/dev/termination-log"
MAX_RESULT_BYTES = 3 * 1024
PROGRESS_PREFIX = "mathtune-progress "


def default_result_file() -> Optional[str]:
    return TERMINATION_LOG if os.path.exists(TERMINATION_LOG) else None


def _dumps(result: Dict[str, Any]) -> str:
    return json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)


# Where a long error was cut: its head (what failed) and its tail (the last
# lines of a traceback or a tool's output) stay on either side.
CUT_MARK = " [... {0} bytes cut ...] "


def encode_result(result: Dict[str, Any]) -> str:
    """Compact JSON that fits a termination message, always valid JSON.

    Large members are dropped (and named in `truncated`) rather than cutting the
    JSON mid-way, which would leave the operator nothing to parse. `stage`,
    `ok` and `error` stay; an error too long even then keeps its head and tail
    around a marker (cut at character, never byte, boundaries).
    """
    text = _dumps(result)
    if len(text.encode()) <= MAX_RESULT_BYTES:
        return text
    trimmed = dict(result)
    dropped = []
    for key in sorted(trimmed, key=lambda k: -len(_dumps(trimmed[k]))):
        if key in ("stage", "ok", "error"):
            continue
        dropped.append(key)
        del trimmed[key]
        trimmed["truncated"] = dropped
        text = _dumps(trimmed)
        if len(text.encode()) <= MAX_RESULT_BYTES:
            return text
    error = str(trimmed.get("error", ""))
    trimmed["error"] = ""
    # The error's JSON may take what the rest leaves (its empty string's two quotes included).
    budget = MAX_RESULT_BYTES - len(_dumps(trimmed).encode()) + 2
    return _dumps({**trimmed, "error": _head_and_tail(error, budget)})


def _head_and_tail(error: str, budget: int) -> str:
    """The most of `error`'s head and tail, around CUT_MARK, whose JSON string fits `budget`
    bytes: cut between characters (never inside one), the JSON escapes counted."""
    best = CUT_MARK.format(len(error.encode()))
    low, high = 0, len(error) // 2
    while low <= high:
        keep = (low + high) // 2
        cut = error[keep:len(error) - keep]
        text = error[:keep] + CUT_MARK.format(len(cut.encode())) + error[len(error) - keep:]
        if len(json.dumps(text).encode()) <= budget:
            best, low = text, keep + 1
        else:
            high = keep - 1
    return best


def publish_result(result: Dict[str, Any], result_file: Optional[str]) -> str:
    text = encode_result(result)
    if result_file:
        with open(result_file, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text, flush=True)
    return text


def publish_progress(**fields: Any) -> None:
    """One progress line the operator picks out of the pod log."""
    sys.stdout.write(PROGRESS_PREFIX + json.dumps(fields, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
