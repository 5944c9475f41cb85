"""docs/contract.md §2: every command line the operator can render for the
example runs is accepted by the pipeline's own CLI parser."""
import re

import pytest

from mathtune_api import parse_spec
from mathtune_operator import builders, plan
from mathtune_operator.resource import Run

from .conftest import EXAMPLES, run_from

from mathtune_pipeline import cli as pipeline_cli  # noqa: E402
from tests import examples

# What the kubelet substitutes for $(VAR) references in args.
ENV_VALUES = {"MATHTUNE_NODE_RANK": "1"}


def _expand(arg: str) -> str:
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: ENV_VALUES[m.group(1)], arg)


def _variants():
    for path in examples.RUNS:
        run = run_from(path)
        yield path.stem, run
    multi = run_from(EXAMPLES / "seed000-llama3-quota-cot.yaml")
    multi["spec"]["resources"].update(nodes=2, npusPerNode=8)
    yield "seed000-two-nodes", multi


@pytest.mark.parametrize("label,run", list(_variants()), ids=[v[0] for v in _variants()])
def test_pipeline_cli_accepts_every_rendered_command(label, run):
    for stage in plan.stages(parse_spec(run["spec"])):
        container = builders.job(Run.of(run), stage)["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["mathtune-pipeline"]
        args = [_expand(a) for a in container["args"]]
        parsed = pipeline_cli.build_parser(args).parse_args(args)
        assert parsed.command == stage
        assert parsed.spec == "/etc/mathtune/spec.json" and parsed.result_file == "/dev/termination-log"
        if stage == "train":
            assert parsed.resume == "auto"
            if run["spec"]["resources"]["nodes"] > 1:
                assert parsed.node_rank == 1 and parsed.master_addr.startswith(f"{run['metadata']['name']}-train-0.")


def test_example_quotas_use_the_pipelines_problem_types():
    """A quota for a type the classifier never produces would silently sample nothing."""
    from mathtune_pipeline.data import types

    for path in examples.RUNS:
        quotas = run_from(path)["spec"]["data"]["sample"].get("quotas") or {}
        unknown = set(quotas) - set(types.CONTEST_TYPES)
        assert not unknown, f"{path.name}: {sorted(unknown)} are not types the pipeline classifies"
