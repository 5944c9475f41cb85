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


def encode_result(result: Dict[str, Any]) -> str:
    """Compact JSON, trimmed to fit a termination message.

    Large members are dropped (and named in `truncated`) rather than cutting the
    JSON mid-way, which would leave the operator nothing to parse.
    """
    text = json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)
    if len(text.encode()) <= MAX_RESULT_BYTES:
        return text
    trimmed = dict(result)
    dropped = []
    for key in sorted(trimmed, key=lambda k: -len(json.dumps(trimmed[k], default=str))):
        if key in ("stage", "ok", "error"):
            continue
        dropped.append(key)
        del trimmed[key]
        trimmed["truncated"] = dropped
        text = json.dumps(trimmed, separators=(",", ":"), sort_keys=True, default=str)
        if len(text.encode()) <= MAX_RESULT_BYTES:
            return text
    return text[:MAX_RESULT_BYTES]


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
