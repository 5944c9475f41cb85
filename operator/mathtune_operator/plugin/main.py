"""`kubectl mathtune`: submit and watch MathFinetune runs, follow their logs
across stages, read and compare results, fetch artifacts, explain a stuck run.

Exit codes: 0 succeeded with the gate passed; 3 succeeded but the gate failed;
4 the run failed; 130 interrupted; 2 bad input (a file that is not a
MathFinetune, one the API server refuses, an unknown run); 1 anything else
(no cluster, no CRD). docs/cli.md has the whole reference.
"""
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import click
import yaml
from rich.console import Console
from rich.table import Table

from .. import names
from . import compare as comparing
from . import errors, explain as explaining, follow, render, volume
from . import watch as watching
from .errors import CliError
from .kube import Cluster


class Context:
    def __init__(self, kubeconfig: Optional[str], context: Optional[str], namespace: Optional[str]):
        self.kubeconfig, self.context, self.namespace = kubeconfig, context, namespace
        self._cluster: Optional[Cluster] = None
        self.console = Console(highlight=False)

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = Cluster(self.kubeconfig, self.context, self.namespace)
        return self._cluster

    def kubectl(self) -> List[str]:
        return volume.kubectl_command(self.kubeconfig, self.context)


def _run_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[Any]:
    """Shell completion of run names: the namespace's MathFinetunes (nothing when the cluster is not there)."""
    try:
        params = ctx.find_root().params
        cluster = Cluster(params.get("kubeconfig"), params.get("context"), params.get("namespace"))
        return [click.shell_completion.CompletionItem(r["metadata"]["name"]) for r in cluster.runs()
                if r["metadata"]["name"].startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []


pass_context = click.make_pass_decorator(Context)
NAME = click.argument("name", shell_complete=_run_names)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=__doc__)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="kubeconfig file (default: $KUBECONFIG, "
                                                                       "~/.kube/config)")
@click.option("--context", default=None, help="kubeconfig context (default: the current one)")
@click.option("-n", "--namespace", default=None, help="namespace (default: the context's, else default)")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: Optional[str], context: Optional[str], namespace: Optional[str]) -> None:
    if kubeconfig and ":" in kubeconfig:
        kubeconfig = kubeconfig.split(":")[0]  # kubectl merges a KUBECONFIG list; the first file is the usual one
    ctx.obj = Context(kubeconfig, context, namespace)


def _load(path: str) -> Dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: cannot read it ({exc.strerror})", errors.USAGE) from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not YAML ({exc})", errors.USAGE) from None
    if not isinstance(doc, dict) or doc.get("kind") != names.KIND or \
            str(doc.get("apiVersion", "")).split("/")[0] != names.GROUP:
        raise CliError(f"{path}: not a MathFinetune (expected apiVersion {names.API_VERSION}, kind {names.KIND})",
                       errors.USAGE)
    if not (doc.get("metadata") or {}).get("name"):
        raise CliError(f"{path}: metadata.name is required", errors.USAGE)
    return doc


@cli.command(help="Create a MathFinetune from FILE; with --watch, show it live until it ends "
                  "(exit 0 gate passed, 3 gate failed, 4 run failed, 130 interrupted).")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--watch", "-w", is_flag=True, help="show stage, epoch/step, loss, ETA and the last event until "
                                                  "the run ends")
@pass_context
def submit(obj: Context, file: str, watch: bool) -> None:
    doc = _load(file)
    given = (doc.get("metadata") or {}).get("namespace")
    if given and obj.namespace is None:
        obj.namespace = given  # as kubectl create -f: the file's namespace unless -n says otherwise
    created = obj.cluster.create(doc)
    name = created["metadata"]["name"]
    obj.console.print(f"mathfinetune {name} created in namespace {obj.cluster.namespace}")
    if watch:
        code = watching.watch(obj.cluster, name, obj.console)
        obj.console.print(explaining.explain(obj.cluster.run(name), [], None)[0])
        sys.exit(code)


@cli.command(help="One screen: every stage with state, duration and attempts; progress; conditions; the last "
                  "events.")
@NAME
@pass_context
def status(obj: Context, name: str) -> None:
    run = obj.cluster.run(name)
    obj.console.print(render.status_view(run, obj.cluster.events(name), datetime.now(timezone.utc)))


@cli.command(help="The run's logs across its stages in order, each line prefixed with its stage (and rank); "
                  "-f follows the running stage and then the next.")
@NAME
@click.option("-f", "--follow", "following", is_flag=True, help="follow until the run ends")
@click.option("--stage", default=None, help="only this stage")
@click.option("--rank", type=int, default=None, help="only this training rank")
@pass_context
def logs(obj: Context, name: str, following: bool, stage: Optional[str], rank: Optional[int]) -> None:
    obj.cluster.run(name)  # an unknown run is an error, not an empty log

    def write(line: str) -> None:
        click.echo(line)

    if following:
        follow.follow(obj.cluster, name, write, stage, rank)
    else:
        follow.logs(obj.cluster, name, write, stage, rank)


@cli.command(help="Math accuracy per type under both scoring rules, SQuAD F1/EM against the base, the gate, "
                  "the best epoch and the exports.")
@NAME
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@pass_context
def results(obj: Context, name: str, output: str) -> None:
    run = obj.cluster.run(name)
    if output == "json":
        click.echo(json.dumps(render.results_data(run), indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(render.results_data(run), sort_keys=False))
    else:
        obj.console.print(render.results_view(run))


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def _verdicts(obj: Context, run: Dict[str, Any]) -> Optional[Dict[int, comparing.Verdict]]:
    """Per-problem verdicts of a run's best epoch, read from its volume; None when it has none."""
    epoch = ((run.get("status") or {}).get("results") or {}).get("bestEpoch")
    if epoch is None:
        return None
    import ast

    with volume.mounted(obj.cluster, run, obj.kubectl()) as vol:
        scores = json.loads(vol.read("predict/scores.json")).get(str(epoch)) or {}
        outputs = [row["text_generation_text"][0] for row in
                   ast.literal_eval(vol.read(f"predict/{epoch}/predictions.txt").decode("utf-8"))]
    return comparing.verdicts(scores, outputs)


@cli.command(help="Runs side by side per metric and per type, differences marked; the recipe fields that differ; "
                  "the problems whose verdict flipped between the first two (--flips).")
@click.argument("names_", metavar="NAME NAME...", nargs=-1, required=True, shell_complete=_run_names)
@click.option("--flips/--no-flips", default=False, help="read both runs' predictions from their volumes and list "
                                                        "the problems right in one and wrong in the other")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@pass_context
def compare(obj: Context, names_: List[str], flips: bool, output: str) -> None:
    if len(names_) < 2:
        raise CliError("compare needs two runs or more", errors.USAGE)
    runs = [obj.cluster.run(n) for n in names_]
    metrics = comparing.metric_rows(runs)
    recipe = comparing.recipe_differences(runs)
    flipped = None
    if flips:
        first, second = _verdicts(obj, runs[0]), _verdicts(obj, runs[1])
        flipped = comparing.flips(first, second) if first is not None and second is not None else None
    if output == "json":
        click.echo(json.dumps({"runs": list(names_),
                               "metrics": [{"metric": m, "values": v, "differ": d} for m, v, d in metrics],
                               "recipe": [{"field": f, "values": v} for f, v in recipe],
                               "flips": flipped}, indent=2, ensure_ascii=False))
        return
    table = Table(title="results", title_justify="left")
    for column in ["metric", *names_]:
        table.add_column(column)
    for metric, values, differ in metrics:
        table.add_row(("* " if differ else "  ") + metric, *[_value(v) for v in values])
    obj.console.print(table)
    obj.console.print("* marks a metric that differs")
    differences = Table(title="recipe fields that differ", title_justify="left")
    for column in ["field", *names_]:
        differences.add_column(column)
    for field, values in recipe:
        differences.add_row(field, *[_value(v) for v in values])
    obj.console.print(differences)
    if flips:
        if flipped is None:
            obj.console.print("verdicts per problem unknown (no predictions, or their misses were cut short)")
        else:
            swaps = Table(title=f"verdicts that flipped from {names_[0]} to {names_[1]}", title_justify="left")
            for column in ("#", "change", "question", names_[0], names_[1]):
                swaps.add_column(column)
            for f in flipped:
                swaps.add_row(str(f["index"]), f["change"], f["question"][:60], f["first"][:60], f["second"][:60])
            obj.console.print(swaps)


@cli.command(help="What the run produced (checkpoints, merged model, exports, report, plots) with sizes; "
                  "--download copies them out of the work volume.")
@NAME
@click.option("--download", type=click.Path(file_okay=False), default=None, help="copy the artifacts into DIR")
@pass_context
def artifacts(obj: Context, name: str, download: Optional[str]) -> None:
    run = obj.cluster.run(name)
    results_ = (run.get("status") or {}).get("results") or {}
    listed = {key: path for key, path in (results_.get("artifacts") or {}).items() if path}
    listed.update({f"export/{row['format']}": row["location"] for row in results_.get("exports") or []})
    if not listed:
        raise CliError(f"run {name} has no artifacts yet ({(run.get('status') or {}).get('phase', 'Pending')})",
                       errors.USAGE)
    sizes = {row["location"]: row.get("bytes") for row in results_.get("exports") or []}
    table = Table(title=f"artifacts of {name}", title_justify="left")
    for column in ("artifact", "path (in the run's directory)", "size"):
        table.add_column(column)
    for key, path in sorted(listed.items()):
        table.add_row(key, path, "-" if sizes.get(path) is None else f"{sizes[path] / 1e6:.1f} MB")
    obj.console.print(table)
    if download:
        target = Path(download)
        with volume.mounted(obj.cluster, run, obj.kubectl()) as vol:
            for path in sorted(set(listed.values())):
                vol.copy(path, target / path)
                obj.console.print(f"copied {path} -> {target / path}")


@cli.command(help="Why the run is pending, stuck or failed, in plain words.")
@NAME
@pass_context
def explain(obj: Context, name: str) -> None:
    run = obj.cluster.run(name)
    claim = volume.claim_of(run)
    try:
        phase = obj.cluster.core.read_namespaced_persistent_volume_claim(claim, obj.cluster.namespace).status.phase
    except Exception:  # noqa: BLE001 - a missing claim is said by the operator's own diagnosis
        phase = None
    for sentence in explaining.explain(run, obj.cluster.stage_pods(name), phase):
        click.echo(sentence)


@cli.command("sweep-report", help="A MathFinetuneSweep's report, one self-contained HTML page: math accuracy "
                                  "against F1 with the gate, accuracy per epoch, parameter importance, every "
                                  "trial. Prints the page's path.")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="directory to write into "
                                                                            "(default: ./NAME-report)")
@pass_context
def sweep_report(obj: Context, name: str, out: Optional[str]) -> None:
    from .sweep_report import write_report  # matplotlib and optuna load for this command only

    sweep = obj.cluster.sweep(name)
    try:
        written = write_report(sweep, Path(out or f"{name}-report"))
    except OSError as exc:
        raise CliError(f"{exc.filename or out}: cannot write the report ({exc.strerror})", errors.USAGE) from None
    click.echo(str(written["html"]))


def main() -> None:
    try:
        cli(standalone_mode=False)
    except CliError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(errors.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(errors.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(errors.USAGE)
