"""The export readers' interpreter (torch, transformers, peft: `make readers`).

They live in a venv of their own (requirements-readers.txt), so what reads an
export in the tests is the ecosystem's code, in a process that never imported
the project's."""
import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
READER = HERE / "unit" / "pipeline" / "export" / "hf_reader.py"


def default_python() -> str:
    """Where `make readers` puts them: keyed by requirements-readers.txt, as the Makefile keys it."""
    import hashlib

    key = hashlib.sha256((HERE.parent / "requirements-readers.txt").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("MATHTUNE_CACHE") or Path.home() / ".cache" / "mathtune")
    return str(cache / "venvs" / f"readers-{key}" / "bin" / "python")


def python() -> str:
    found = os.environ.get("MATHTUNE_READERS_PYTHON") or default_python()
    if not found or not Path(found).is_file():
        pytest.fail(f"the export readers' python ({found}) is missing: "
                    f"run `make readers` (torch, transformers and peft in a venv of their own)", pytrace=False)
    return found


def read(ids, new_tokens: int, tmp: Path, **models: str) -> dict:
    """Logits and greedy tokens from each model: merged=<hf dir>, peft=<base hf dir>,<adapter dir>."""
    request, answer = tmp / "ids.json", tmp / "read.json"
    request.write_text(json.dumps({"ids": [list(map(int, row)) for row in ids], "newTokens": new_tokens}))
    _run("logits", request, answer, *(f"{kind}={where}" for kind, where in models.items()))
    return json.loads(answer.read_text())


def answers(model_dir: Path, prompts, max_new_tokens: int, tmp: Path) -> list:
    """What the exported model answers to each prompt (greedy, BOS first, as the predict stage asks)."""
    request, answer = tmp / "prompts.json", tmp / "answers.json"
    request.write_text(json.dumps({"prompts": list(prompts), "maxNewTokens": max_new_tokens}, ensure_ascii=False))
    _run("answers", request, answer, str(model_dir))
    return json.loads(answer.read_text())["answers"]


def _run(command: str, *args) -> None:
    proc = subprocess.run([python(), str(READER), command, *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
