"""`mathtune-pipeline <stage> ...`: the command line every stage Job runs.

Each stage lives in `mathtune_pipeline.stages.<name>` and exposes
`add_arguments(parser)` and `run(args, spec, metadata) -> dict`. Modules are
imported only when their stage runs, so `prepare` never pays for MindSpore.
Exit codes (docs/contract.md): 0 ok, 2 bad spec or input (permanent), 1 other.
"""
import argparse
import importlib
import os
import sys
import traceback
from typing import Dict, List, Optional

from .errors import SpecError, StageExit
from .result import default_result_file, publish_result

# stage name -> (module, one-line help). Order is the pipeline's order.
STAGES: Dict[str, str] = {
    "prepare": "load, dedupe, classify, sample, chain of thought, prompt template",
    "tokenize": "tokenize prepared rows into MindRecord shards",
    "train": "LoRA fine-tune with msrun (MindFormers)",
    "merge": "distributed checkpoints to complete ones; LoRA merge",
    "evaluate": "SQuAD F1/EM of the base model and each candidate epoch",
    "predict": "math (or choice) accuracy on the held-out set",
    "report": "pick the best epoch that passes the gate; plots; results",
    "export": "the chosen epoch as a PEFT adapter and a Hugging Face model, with a model card",
}
# Commands that are not pipeline stages (no --spec/--run-dir contract).
TOOLS: Dict[str, str] = {
    "synth": "write a contest-scale synthetic train.json for benchmarks",
    "run-local": "run every stage in order on this machine",
    "demo-data": "write the CPU example's missing inputs (a small SQuAD-form set; fixtures copied)",
}


def _module(name: str):
    return importlib.import_module(f"mathtune_pipeline.stages.{name.replace('-', '_')}")


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mathtune-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    wanted = argv[0] if argv else None
    for name, help_text in {**STAGES, **TOOLS}.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in STAGES:
            p.add_argument("--spec", required=True, help="run file: a MathFinetune resource or its spec (YAML/JSON)")
            # Absolute: training's msrun workers run in a directory of their own.
            p.add_argument("--run-dir", required=True, type=os.path.abspath,
                           help="this run's directory on the work volume")
            p.add_argument("--result-file", default=default_result_file(),
                           help="where to write the result JSON (default: /dev/termination-log when present)")
        # Only the chosen command's module is imported: help for all, cost for one.
        if wanted is None or wanted == name or wanted in ("-h", "--help"):
            try:
                _module(name).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != f"mathtune_pipeline.stages.{name.replace('-', '_')}":
                    raise
    return parser


def ensure_home() -> None:
    """Make $HOME when it names a missing directory, owned by this user.

    Stage pods run with a read-only root filesystem and HOME under a scratch
    emptyDir (owned by root); MindFormers' mindpet refuses to start unless
    $HOME belongs to the user running it, so the stage makes its own."""
    home = os.environ.get("HOME")
    if home and not os.path.isdir(home):
        os.makedirs(home, mode=0o700, exist_ok=True)


def main(argv: Optional[List[str]] = None) -> int:
    ensure_home()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    command = args.command
    if command in TOOLS:
        try:
            return int(_module(command).run(args) or 0)
        except SpecError as exc:  # a bad run file or argument: say which field, no traceback
            print(f"mathtune-pipeline {command}: {exc}", file=sys.stderr)
            return 2

    from .spec import load_spec

    result: Dict = {"stage": command, "ok": False}
    code = 1
    try:
        spec, metadata = load_spec(args.spec)
        result.update(_module(command).run(args, spec, metadata) or {})
        result["ok"] = True
        code = 0
    except SpecError as exc:
        result["error"] = str(exc)
        code = 2
    except StageExit as exc:
        result["error"] = str(exc)
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - any other failure is reported, then retried by the operator
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    publish_result(result, args.result_file)
    if code:
        print(f"mathtune-pipeline {command}: {result.get('error')}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
