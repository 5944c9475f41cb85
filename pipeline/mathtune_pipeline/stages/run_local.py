"""`mathtune-pipeline run-local run.yaml --run-dir D`: every stage in order on this machine.

The same commands the stage Jobs run (`mathtune-pipeline <stage> --spec ...
--run-dir ...`, each in its own process), with the run's work volume replaced
by a local directory: every path of the spec under `storage.dataPath` is
moved under `--data-dir`, and inputs missing there are made by `demo-data`.
Progress lines become progress bars; each stage's result line is shown; the
first failing stage stops the run with that stage's exit code.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import yaml

from ..cli import STAGES
from ..errors import SpecError
from ..result import PROGRESS_PREFIX
from ..spec import MathFinetuneSpec, load_spec

BAR = 30


def add_arguments(parser) -> None:
    parser.add_argument("run_file", help="a MathFinetune resource or its spec (YAML/JSON)")
    parser.add_argument("--run-dir", default=None, help="where the stages write (default ./out/<run name>)")
    parser.add_argument("--data-dir", default=None,
                        help="local stand-in for the work volume's dataPath (default <run-dir>/../data)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset, in pipeline order")


def _uris(node: Any) -> List[str]:
    """Every input file of a spec: each `uri`, and the model's `checkpoint` (demo-data makes the CPU example's)."""
    if isinstance(node, dict):
        return [u for k, v in node.items()
                for u in ([v] if k in ("uri", "checkpoint") and isinstance(v, str) and v else _uris(v))]
    if isinstance(node, list):
        return [u for v in node for u in _uris(v)]
    return []


def localize(spec: MathFinetuneSpec, data_dir: Path) -> Dict[str, Any]:
    """The spec (its wire form) with its work-volume paths moved under `data_dir` (also as the new dataPath)."""
    old = spec.storage.data_path.rstrip("/")
    out = spec.wire()

    def move(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("uri", "checkpoint") and isinstance(value, str) and value.startswith(old + "/"):
                    node[key] = str(data_dir / value[len(old) + 1:])
                else:
                    move(value)
        elif isinstance(node, list):
            for item in node:
                move(item)

    move(out)
    out["storage"]["dataPath"] = str(data_dir)
    return out


class Bars:
    """One line per stage, redrawn in place from its progress lines."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def show(self, stage: str, fields: Dict[str, Any]) -> None:
        steps, step = fields.get("steps") or 0, fields.get("step") or 0
        done = min(1.0, step / steps) if steps else 0.0
        bar = "#" * int(done * BAR) + "-" * (BAR - int(done * BAR))
        what = fields.get("model") or (f"epoch {fields['epoch']}/{fields['epochs']}" if "epochs" in fields else "")
        extra = f" loss {fields['loss']:.4f}" if "loss" in fields else ""
        line = f"{stage:9} [{bar}] {step}/{steps} {what}{extra}"
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            self.stream.flush()
        elif now - self.last > 5 or step == steps:  # logs: a line now and then
            self.stream.write(line + "\n")
            self.last = now

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def run_stage(stage: str, spec_path: Path, run_dir: Path, log: Path) -> (int, Dict[str, Any]):
    command = [sys.executable, "-m", "mathtune_pipeline.cli", stage, "--spec", str(spec_path),
               "--run-dir", str(run_dir)]
    bars = Bars()
    last_json: Dict[str, Any] = {}
    with open(log, "w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(command) + "\n")
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in proc.stdout:
            fh.write(line)
            if line.startswith(PROGRESS_PREFIX):
                bars.show(stage, json.loads(line[len(PROGRESS_PREFIX):]))
            elif line.startswith("{"):
                try:
                    last_json = json.loads(line)
                except ValueError:
                    pass
        code = proc.wait()
    bars.end()
    return code, last_json


def run(args) -> int:
    spec, metadata = load_spec(args.run_file)
    name = metadata["name"]
    run_dir = Path(args.run_dir or Path("out") / name).resolve()
    data_dir = Path(args.data_dir).resolve() if args.data_dir else run_dir.parent / "data"
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SpecError("--stages", f"stages among {', '.join(STAGES)} (not {', '.join(unknown)})")
    local = localize(spec, data_dir)
    missing = [u for u in _uris(local) if u.startswith(str(data_dir)) and not Path(u).exists()]
    if missing:
        command = [sys.executable, "-m", "mathtune_pipeline.cli", "demo-data", "--out", str(data_dir / "fixtures")]
        subprocess.run(command, check=True)
        still = [u for u in missing if not Path(u).exists()]
        if still:
            print(f"run-local: no input for {still}: demo-data does not make it; put it under {data_dir}",
                  file=sys.stderr)
            return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "run.local.yaml"
    spec_path.write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                         "metadata": {"name": name}, "spec": local}, sort_keys=False),
                         encoding="utf-8")
    print(f"run-local: {name}: run dir {run_dir}, data {data_dir}", flush=True)
    started = time.monotonic()
    timings = {}
    for stage in stages:
        t0 = time.monotonic()
        code, result = run_stage(stage, spec_path, run_dir, run_dir / f"{stage}.log")
        timings[stage] = round(time.monotonic() - t0, 1)
        summary = json.dumps(result, separators=(",", ":"))
        print(f"run-local: {stage} exit {code} in {timings[stage]}s: {summary[:600]}", flush=True)
        if code != 0:
            print(f"run-local: {stage} failed; its output: {run_dir / (stage + '.log')}", file=sys.stderr)
            return code
    total = round(time.monotonic() - started, 1)
    (run_dir / "run-local.json").write_text(json.dumps({"seconds": total, "stages": timings}, indent=2))
    print(f"run-local: all {len(stages)} stages done in {total}s ({', '.join(f'{k} {v}s' for k, v in timings.items())})",
          flush=True)
    return 0
