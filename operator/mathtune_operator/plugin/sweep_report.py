"""The report of a MathFinetuneSweep as a user looks at it (`kubectl mathtune
sweep-report`): from the sweep object alone (`kubectl get mathfinetunesweep
NAME -o json`), three figures and one self-contained HTML page.

- accuracy-vs-f1.png: every finished trial, math accuracy against SQuAD F1,
  the gate's F1 threshold as a line, the best trial ringed;
- accuracy-per-epoch.png: each trial's math accuracy per epoch;
- importance.png: which parameters mattered for the objective (Optuna's
  PED-ANOVA over the trials with an objective);
- report.html: the sweep, its best trial, the counts, the figures (inline) and
  every trial, all text escaped (trial messages come from pods).

Matplotlib draws on its Agg canvas through Figure objects, never pyplot: no
display, and no global figure state in the plugin's process.
"""
import base64
import html
import json
import statistics
import warnings
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection

from mathtune_api.sweep import MathFinetuneSweepSpec

from ..sweeps.space import distributions

FINISHED = ("Succeeded", "Infeasible")
COUNTED = ("succeeded", "infeasible", "pruned", "failed", "running", "total")
STYLE = {"Succeeded": ("o", "#1b9e77", "Succeeded (gate passed)"),
         "Infeasible": ("X", "#d95f02", "Infeasible (missed the gate)")}
DPI = 100
FILES = {"accuracy_vs_f1": "accuracy-vs-f1.png", "per_epoch": "accuracy-per-epoch.png",
         "importance": "importance.png"}


def _trials(sweep: Dict[str, Any]) -> List[Dict[str, Any]]:
    return list((sweep.get("status") or {}).get("trials") or [])


def _best_number(sweep: Dict[str, Any]) -> Optional[int]:
    best = (sweep.get("status") or {}).get("best") or {}
    return int(best["number"]) if best.get("number") is not None else None


def _spec(sweep: Dict[str, Any]) -> MathFinetuneSweepSpec:
    """The sweep's spec read by the API model, its defaults applied (a hand-made sweep file may lack them)."""
    return MathFinetuneSweepSpec.model_validate(sweep.get("spec") or {})


def _value(text: Optional[str]) -> Any:
    """A trial's parameter value from its JSON text (None when the trial has none)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _figure(width: float = 8, height: float = 5) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _message(fig: Figure, title: str, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=12, transform=ax.transAxes)
    return fig


def gate_f1(trials: List[Dict[str, Any]]) -> Optional[float]:
    """The gate's F1 threshold: the trials share one base model, so one threshold; the median of those recorded."""
    values = [float(t["gateF1"]) for t in trials if t.get("gateF1") is not None]
    return statistics.median(values) if values else None


def accuracy_vs_f1_figure(sweep: Dict[str, Any]) -> Figure:
    trials = _trials(sweep)
    fig = _figure()
    title = f"{sweep['metadata']['name']}: math accuracy against original ability"
    points = [t for t in trials if t.get("state") in FINISHED and t.get("f1") is not None
              and t.get("mathAccuracy") is not None]
    if not points:
        return _message(fig, title, "no finished trial yet")
    ax = fig.add_subplot()
    for state, (marker, colour, label) in STYLE.items():
        mine = [t for t in points if t["state"] == state]
        if mine:
            ax.scatter([t["f1"] for t in mine], [t["mathAccuracy"] for t in mine], marker=marker, s=80,
                       color=colour, label=label, zorder=3)
    for t in points:
        ax.annotate(str(t["number"]), (t["f1"], t["mathAccuracy"]), xytext=(8, 7), textcoords="offset points",
                    fontsize=9)
    gate = gate_f1(trials)
    if gate is not None:
        ax.axvline(gate, color="#555555", linestyle="--", linewidth=1.2, label=f"gate F1 ≥ {gate:g}", zorder=2)
    best = next((t for t in points if t["number"] == _best_number(sweep)), None)
    if best is not None:
        ax.scatter([best["f1"]], [best["mathAccuracy"]], s=380, facecolors="none", edgecolors="black",
                   linewidths=2, label=f"best: {best['name']}", zorder=4)
    ax.margins(0.15)
    ax.set_xlabel("SQuAD F1 (original ability)")
    ax.set_ylabel("math accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def per_epoch_figure(sweep: Dict[str, Any]) -> Figure:
    fig = _figure()
    title = f"{sweep['metadata']['name']}: math accuracy per epoch"
    best = _best_number(sweep)
    lines = 0
    ax = None
    for t in sorted(_trials(sweep), key=lambda t: int(t["number"])):
        epochs = sorted(((int(e), row.get("accuracy")) for e, row in (t.get("epochs") or {}).items()),
                        key=lambda p: p[0])
        epochs = [(e, a) for e, a in epochs if a is not None]
        if not epochs:
            continue
        ax = ax or fig.add_subplot()
        ax.plot([e for e, _ in epochs], [a for _, a in epochs], marker="o",
                linewidth=3 if t["number"] == best else 1.4, label=f"{t['name']} ({t.get('state', '?')})")
        lines += 1
    if ax is None:
        return _message(fig, title, "no trial has reported an epoch yet")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("math accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=1 + lines // 16)
    fig.tight_layout()
    return fig


class Importance(NamedTuple):
    values: Dict[str, float]  # varying parameter -> importance (they sum to 1)
    constant: List[str]  # parameters with one value in every trial counted
    trials: int  # trials with an objective
    note: Optional[str]  # why nothing could be computed


def importances(sweep: Dict[str, Any]) -> Importance:
    """The parameters' importance for the objective over the trials that have one (Succeeded and Infeasible)."""
    spec = _spec(sweep)
    space = distributions(spec)  # as the operator's study reads the parameters
    scored = [t for t in _trials(sweep) if t.get("state") in FINISHED and t.get("objective") is not None
              and all(path in (t.get("params") or {}) for path in space)]
    if len(scored) < 2:
        return Importance({}, [], len(scored), f"parameter importance needs at least 2 trials with an objective; "
                                               f"this sweep has {len(scored)}")
    params = [{path: _value(t["params"][path]) for path in space} for t in scored]
    varying = [path for path in space if len({json.dumps(p[path], sort_keys=True) for p in params}) > 1]
    # PED-ANOVA still hands a parameter that never changed a share of the importance: it is listed as constant
    # instead of scored.
    constant = [path for path in space if path not in varying]
    if not varying:
        return Importance({}, constant, len(scored), f"every parameter had the same value in all {len(scored)} "
                                                     "trials with an objective: nothing to tell apart")
    if len({float(t["objective"]) for t in scored}) == 1:
        return Importance({}, constant, len(scored), f"all {len(scored)} trials have the same objective: "
                                                     "no parameter made a difference")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory" on the terminal
    try:
        minimize = spec.objective.direction == "minimize"
        study = optuna.create_study(direction=StudyDirection.MINIMIZE if minimize else StudyDirection.MAXIMIZE)
        for t, p in zip(scored, params):
            study.add_trial(optuna.trial.create_trial(params=p, distributions=space, value=float(t["objective"])))
        # PED-ANOVA (Optuna's default evaluator): it compares where the top trials' values lie with where all
        # trials' lie, so it answers from 2 trials on and needs no scikit-learn; fANOVA and mean decrease in
        # impurity fit a random forest, which needs scikit-learn (not a dependency) and is noise on a handful of
        # trials. Its default top quantile (10%) is one trial in a short sweep: the importance would only say how
        # unusual the best trial's values are, so the top group holds 5 trials where it can (Optuna's own advice),
        # at most half of them.
        quantile = min(0.5, max(0.1, 5 / len(scored)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its caveats on few trials: the figure states how many there are
            values = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile),
                                           params=varying)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return Importance({k: float(v) for k, v in values.items()}, constant, len(scored), None)


def importance_figure(sweep: Dict[str, Any]) -> Figure:
    found = importances(sweep)
    metric = _spec(sweep).objective.metric
    title = f"{sweep['metadata']['name']}: parameter importance for {metric}"
    rows = sorted(found.values.items(), key=lambda kv: kv[1]) if found.note is None else []
    fig = _figure(8, max(3.0, 1.2 + 0.45 * (len(rows) + len(found.constant))))
    if found.note is not None:
        return _message(fig, title, found.note)
    ax = fig.add_subplot()
    labels = [f"{path} (constant)" for path in found.constant] + [path for path, _ in rows]
    values = [0.0] * len(found.constant) + [v for _, v in rows]
    bars = ax.barh(labels, values, color="#7570b3")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=9)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"importance (Optuna PED-ANOVA over {found.trials} trials with an objective)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_num(x) for x in v) + "]"
    return str(v)


def _e(v: Any) -> str:
    return html.escape(_num(v))


CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { margin-bottom: 4px; } h2 { margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; } .phase { padding: 2px 8px; border-radius: 10px; background: #eef; }
table { border-collapse: collapse; font-size: 14px; } th, td { padding: 4px 8px; border-bottom: 1px solid #e4e4e4;
 text-align: left; vertical-align: top; } th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff8dc; font-weight: 600; }
.Succeeded { color: #14603f; } .Infeasible { color: #9a4a05; } .Failed { color: #a8181b; } .Running { color: #444; }
.Pruned { color: #5b4a8a; }
.wide { overflow-x: auto; } .counts span { margin-right: 18px; }
tr.message td { white-space: pre-wrap; font-size: 13px; color: #444; border-bottom: 1px solid #ccc; }
figure { margin: 16px 0; } img { max-width: 100%; border: 1px solid #eee; }
"""


def _kv(rows: List[List[str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _best_html(sweep: Dict[str, Any], trials: List[Dict[str, Any]]) -> str:
    best = (sweep.get("status") or {}).get("best")
    if not best:
        return "<p>No trial has passed the gate yet.</p>"
    record = next((t for t in trials if t.get("number") == best.get("number")), {})
    gate = record.get("gateF1")
    passed = record.get("gatePassed")
    gate_text = "–" if gate is None and passed is None else \
        f"F1 ≥ {_e(gate)}: {'passed' if passed else 'missed' if passed is not None else 'unknown'}"
    rows = [["trial", f"{_e(best.get('name'))} (#{_e(best.get('number'))})"],
            ["objective", _e(best.get("objective", record.get("objective")))],
            ["math accuracy (careful reader)", _e(record.get("mathAccuracy", best.get("mathAccuracy")))],
            ["math accuracy (contest rule)", _e(record.get("mathAccuracyContestRule"))],
            ["SQuAD F1", _e(record.get("f1", best.get("f1")))], ["gate", gate_text],
            ["best epoch", _e(record.get("bestEpoch"))]]
    params = best.get("params") or record.get("params") or {}
    rows += [[html.escape(path), _e(_value(text))] for path, text in params.items()]
    return _kv(rows)


def _trials_html(sweep: Dict[str, Any], trials: List[Dict[str, Any]]) -> str:
    paths = [p.path for p in _spec(sweep).parameters]
    paths += [k for t in trials for k in (t.get("params") or {}) if k not in paths]
    paths = list(dict.fromkeys(paths))
    best = _best_number(sweep)
    ordered = sorted(trials, key=lambda t: (t.get("number") != best, int(t["number"])))
    head = ["#", "name", "state", *paths, "objective", "math accuracy", "contest rule", "F1", "gate F1",
            "best epoch"]
    header = "".join(f"<th>{html.escape(h).replace('.', '.<wbr>')}</th>" for h in head)  # paths wrap at dots
    out = [f'<div class="wide"><table id="trials"><thead><tr>{header}</tr></thead><tbody>']
    for t in ordered:
        state = html.escape(str(t.get("state", "?")), quote=True)
        cells = [f'<td class="n">{_e(t.get("number"))}</td>', f"<td>{_e(t.get('name'))}</td>",
                 f'<td class="{state}">{state}</td>']
        cells += [f'<td class="n">{_e(_value((t.get("params") or {}).get(p)))}</td>' for p in paths]
        cells += [f'<td class="n">{_e(t.get(k))}</td>' for k in
                  ("objective", "mathAccuracy", "mathAccuracyContestRule", "f1", "gateF1", "bestEpoch")]
        kind = "trial best" if t.get("number") == best else "trial"
        out.append(f'<tr class="{kind}" id="trial-{_e(t.get("number"))}">' + "".join(cells) + "</tr>")
        if t.get("message"):  # why it failed, under it across the table
            out.append(f'<tr class="message"><td></td><td colspan="{len(head) - 1}"><span class="{state}">'
                       f'{state}:</span> {html.escape(str(t["message"]))}</td></tr>')
    return "".join(out) + "</tbody></table></div>"


def _counts(sweep: Dict[str, Any], trials: List[Dict[str, Any]]) -> Dict[str, int]:
    given = (sweep.get("status") or {}).get("counts")
    if given:
        return {k: int(given.get(k, 0)) for k in COUNTED}
    states = [str(t.get("state")) for t in trials]
    return {k: len(trials) if k == "total" else states.count(k.capitalize()) for k in COUNTED}


def page(sweep: Dict[str, Any], pngs: Dict[str, bytes]) -> str:
    trials = _trials(sweep)
    spec, status = _spec(sweep), sweep.get("status") or {}
    name = str(sweep["metadata"]["name"])
    objective = spec.objective
    counts = _counts(sweep, trials)
    phase = _e(status.get("phase") or "Pending")
    figures = "".join(
        f'<figure><img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,'
        f'{base64.b64encode(pngs[key]).decode("ascii")}"></figure>'
        for key, alt in (("accuracy_vs_f1", "math accuracy against SQuAD F1, with the gate"),
                         ("per_epoch", "math accuracy per epoch"), ("importance", "parameter importance")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sweep {html.escape(name)}</title>
<style>{CSS}</style></head><body>
<h1>MathFinetuneSweep {html.escape(name)}</h1>
<p class="sub">namespace {_e(sweep['metadata'].get('namespace'))} · phase <span class="phase">{phase}</span> ·
objective: {html.escape(objective.direction)} {html.escape(objective.metric)} ·
algorithm {_e(spec.algorithm)} · {counts['total']} of {_e(spec.max_trials)} trials made</p>
<h2>Best trial</h2>{_best_html(sweep, trials)}
<h2>Trials</h2><p class="counts">{"".join(f"<span>{k}: <b>{v}</b></span>" for k, v in counts.items())}</p>
{figures}
<h2>Every trial</h2>{_trials_html(sweep, trials)}
</body></html>
"""


def write_report(sweep: Dict[str, Any], out_dir: Path) -> Dict[str, Path]:
    """Write the three figures and report.html into out_dir (made if missing); their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    pngs: Dict[str, bytes] = {}
    for key, draw in (("accuracy_vs_f1", accuracy_vs_f1_figure), ("per_epoch", per_epoch_figure),
                      ("importance", importance_figure)):
        path = out_dir / FILES[key]
        draw(sweep).savefig(path, format="png", dpi=DPI, metadata={"Software": None})
        written[key], pngs[key] = path, path.read_bytes()
    html_path = out_dir / "report.html"
    html_path.write_text(page(sweep, pngs), encoding="utf-8")
    return {"html": html_path, **written}
