"""report: the best epoch that keeps the original capability, with plots and the low-parameter ratio.

Gate (`evaluation.gate`): relative mode passes an epoch whose SQuAD F1 and EM
are at least the given fractions of the base model's (the contest's rule:
90%); absolute mode compares with fixed scores. Among passing epochs the best
has the highest math (or choice) accuracy, ties broken by F1, then the earlier
epoch. When no epoch passes, the best of all is still reported (its scores
are what a user needs to see), with `gatePassed: false`. Writes `<run-dir>/report/results.json` and three PNG plots: the loss
curve, accuracy per problem type (base vs best epoch), F1/EM per epoch
against the gate.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from mathtune_api import MathFinetuneSpec as Spec

from ..artifacts import atomic_stage_dir, read_manifest, sha256_json, write_manifest
from ..errors import SpecError

STAGE = "report"


def add_arguments(parser) -> None:
    pass


def _stage_result(run_dir: Path, stage: str, required: bool = True) -> Optional[Dict[str, Any]]:
    manifest = read_manifest(run_dir / stage)
    if not manifest or "result" not in manifest:
        if required:
            raise SpecError(str(run_dir / stage), f"a finished {stage} stage")
        return None
    return manifest["result"]


def thresholds(gate: Dict[str, Any], base: Dict[str, float]) -> Dict[str, float]:
    mode = gate["mode"]
    if mode == "relative":
        return {"f1": gate["f1"] * base["f1"], "em": gate["em"] * base["em"]}
    if mode == "absolute":
        return {"f1": float(gate["f1"]), "em": float(gate["em"])}
    raise SpecError("spec.evaluation.gate.mode", f"relative or absolute (got {mode!r})")


def choose(epochs: List[str], squad: Dict[str, Dict[str, float]], accuracy: Dict[str, float],
           need: Optional[Dict[str, float]]) -> Dict[str, Any]:
    """{"best": epoch, "passed": [epochs], "gatePassed": bool}: pure, so the rule is tested on its own."""
    passed = [e for e in epochs if need is None or
              (e in squad and squad[e]["f1"] >= need["f1"] and squad[e]["em"] >= need["em"])]

    def rank(e: str):
        return (accuracy.get(e, 0.0), squad.get(e, {}).get("f1", 0.0), -int(e))

    pool = passed or epochs
    return {"best": max(pool, key=rank) if pool else None, "passed": passed, "gatePassed": bool(passed),
            "closest": None if passed or need is None else closest(epochs, squad, need)}


def closest(epochs: List[str], squad: Dict[str, Dict[str, float]], need: Dict[str, float]) -> Optional[Dict[str, Any]]:
    """When no epoch passes the gate: the one that came nearest, and by how much it missed
    (the larger shortfall of F1 and EM, in points below the threshold)."""
    def shortfall(e: str) -> float:
        return max(need["f1"] - squad[e]["f1"], need["em"] - squad[e]["em"])

    scored = [e for e in epochs if e in squad]
    if not scored:
        return None
    nearest = min(scored, key=lambda e: (shortfall(e), -int(e)))
    return {"epoch": int(nearest), "f1": squad[nearest]["f1"], "em": squad[nearest]["em"],
            "f1Short": round(max(0.0, need["f1"] - squad[nearest]["f1"]), 4),
            "emShort": round(max(0.0, need["em"] - squad[nearest]["em"]), 4)}


def _per_type_scored(run_dir: Path, best: str, figure: str) -> Dict[str, float]:
    """Per-type accuracy of the chosen epoch under another reading (`truth`: against the exact
    answers; `contestRule`: the last number), from predict's scores.json (too long for
    predict's result message)."""
    scores = run_dir / "predict" / "scores.json"
    if not scores.is_file():
        return {}
    per_type = ((json.loads(scores.read_text(encoding="utf-8")).get(str(best)) or {}).get(figure) or {})
    return {k: round(v["accuracy"], 4) for k, v in (per_type.get("perType") or {}).items()}


def _gate_missed(nearest: Optional[Dict[str, Any]]) -> str:
    why = "no epoch kept the original capability: bestEpoch is the best of those that failed the gate"
    if nearest:
        why += (f"; epoch {nearest['epoch']} came closest (F1 {nearest['f1']:.2f}, {nearest['f1Short']:.2f} below "
                f"the gate; EM {nearest['em']:.2f}, {nearest['emShort']:.2f} below)")
    return why


def _forgetting_curve(out: Path, evaluation, need, accuracy: Dict[str, float], base_accuracy) -> Optional[str]:
    """Math accuracy and SQuAD F1 per epoch on one plot, with the gate's line: the trade-off a
    fine-tune makes between learning and forgetting, seen at once."""
    import matplotlib.pyplot as plt

    epochs = sorted((e for e in evaluation["epochs"] if e in accuracy), key=int)
    if not epochs:
        return None
    fig, left = plt.subplots(figsize=(7, 3.8))
    xs = [int(e) for e in epochs]
    left.plot(xs, [accuracy[e] * 100 for e in epochs], "o-", color="tab:green", label="math accuracy")
    if base_accuracy is not None:
        left.axhline(base_accuracy * 100, color="tab:green", ls=":", lw=1, label="base accuracy")
    left.set(xlabel="epoch", ylabel="math accuracy (%)", ylim=(0, 100))
    right = left.twinx()
    right.plot(xs, [evaluation["epochs"][e]["f1"] for e in epochs], "s-", color="tab:blue", label="SQuAD F1")
    if need is not None:
        right.axhline(need["f1"], color="tab:blue", ls="--", lw=1, label="F1 gate")
    right.set(ylabel="SQuAD F1", ylim=(0, 100))
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, fontsize=8, loc="lower left")
    left.set_title("Learning and forgetting per epoch")
    fig.tight_layout()
    fig.savefig(out / "forgetting_curve.png", dpi=100)
    plt.close(fig)
    return f"{STAGE}/forgetting_curve.png"


def _plots(out: Path, loss: List[Dict], evaluation, need, prediction, best: Optional[str]) -> Dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    if loss:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        per_epoch = loss[0]["steps"]
        x = [(s["epoch"] - 1) * per_epoch + s["step"] for s in loss]
        ax.plot(x, [s["loss"] for s in loss], lw=1)
        ax.set(xlabel="step", ylabel="loss", title="Training loss")
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
        plt.close(fig)
        files["loss"] = f"{STAGE}/loss.png"
    if prediction and best is not None:
        base, tuned = prediction["base"]["perType"], prediction["epochs"][best]["perType"]
        types = sorted(set(base) | set(tuned))
        fig, ax = plt.subplots(figsize=(max(6, len(types) * 0.7), 3.5))
        xs = range(len(types))
        ax.bar([x - 0.2 for x in xs], [base.get(t, 0) for t in types], 0.4, label="base")
        ax.bar([x + 0.2 for x in xs], [tuned.get(t, 0) for t in types], 0.4, label=f"epoch {best}")
        ax.set_xticks(list(xs), types, rotation=45, ha="right")
        ax.set(ylabel="accuracy", ylim=(0, 1), title="Accuracy per problem type")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "accuracy_per_type.png", dpi=100)
        plt.close(fig)
        files["accuracyPerType"] = f"{STAGE}/accuracy_per_type.png"
    if evaluation:
        epochs = sorted(evaluation["epochs"], key=int)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for metric, color in (("f1", "tab:blue"), ("em", "tab:orange")):
            ax.plot([int(e) for e in epochs], [evaluation["epochs"][e][metric] for e in epochs], "o-",
                    color=color, label=metric.upper())
            if need is not None:
                ax.axhline(need[metric], color=color, ls="--", lw=1, label=f"{metric.upper()} gate")
        ax.set_xticks([int(e) for e in epochs])
        ax.set(xlabel="epoch", ylabel="score", title="SQuAD F1/EM against the gate")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "squad_gate.png", dpi=100)
        plt.close(fig)
        files["squadGate"] = f"{STAGE}/squad_gate.png"
        if prediction:
            accuracy = {e: v["accuracy"] for e, v in prediction["epochs"].items()}
            curve = _forgetting_curve(out, evaluation, need, accuracy, prediction["base"].get("accuracy"))
            if curve:
                files["forgettingCurve"] = curve
    return files


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    train = _stage_result(run_dir, "train")
    evaluation = _stage_result(run_dir, "evaluate", required=spec.evaluation.enabled)
    prediction = _stage_result(run_dir, "predict", required=spec.prediction.enabled)
    evaluation = None if evaluation and evaluation.get("skipped") else evaluation
    prediction = None if prediction and prediction.get("skipped") else prediction
    epochs = [str(e) for e in train["checkpoints"]]
    if evaluation:
        epochs = [e for e in epochs if e in evaluation["epochs"]]
    need = thresholds(spec.evaluation.gate.wire(), evaluation["base"]) if evaluation else None
    accuracy = {e: v["accuracy"] for e, v in (prediction or {}).get("epochs", {}).items()}
    picked = choose(epochs, (evaluation or {}).get("epochs", {}), accuracy, need)
    best = picked["best"]
    loss_path = run_dir / "train" / "loss.json"
    loss = json.loads(loss_path.read_text()) if loss_path.is_file() else []

    with atomic_stage_dir(run_dir, STAGE) as out:
        artifacts = _plots(out, loss, evaluation, need, prediction, best)
        result = {
            "bestEpoch": int(best) if best is not None else None,
            "gatePassed": picked["gatePassed"],
            "gate": need,
            "passedEpochs": [int(e) for e in picked["passed"]],
            "f1": evaluation["epochs"][best]["f1"] if evaluation and best else None,
            "em": evaluation["epochs"][best]["em"] if evaluation and best else None,
            "baseF1": evaluation["base"]["f1"] if evaluation else None,
            "baseEm": evaluation["base"]["em"] if evaluation else None,
            "mathAccuracy": accuracy.get(best) if best else None,
            "baseAccuracy": prediction["base"]["accuracy"] if prediction else None,
            "perType": prediction["epochs"][best]["perType"] if prediction and best else {},
            # The contest's rule (the last number of the output): comparable with the seeds' figures.
            "mathAccuracyContestRule":
                prediction["epochs"][best].get("contestRuleAccuracy") if prediction and best else None,
            "baseAccuracyContestRule": prediction["base"].get("contestRuleAccuracy") if prediction else None,
            "perTypeContestRule": _per_type_scored(run_dir, best, "contestRule") if prediction and best else {},
            # Against the exact answers (the dataset's references come from float arithmetic).
            "mathAccuracyTruth": prediction["epochs"][best].get("truthAccuracy") if prediction and best else None,
            "baseAccuracyTruth": prediction["base"].get("truthAccuracy") if prediction else None,
            "perTypeTruth": _per_type_scored(run_dir, best, "truth") if prediction and best else {},
            "trainableParams": train["trainableParams"],
            "totalParams": train["totalParams"],
            "lowParamRatio": train["trainableParams"] / train["totalParams"],
            "finalLoss": train.get("finalLoss"),
            "artifacts": {**artifacts, "results": f"{STAGE}/results.json",
                          "adapter": f"merge/epoch_{best}/adapter.ckpt" if best else None,
                          "merged": f"merge/epoch_{best}/merged.ckpt" if best else None},
            "closestToGate": picked["closest"],
            "reason": None if picked["gatePassed"] else _gate_missed(picked["closest"]),
        }
        (out / "results.json").write_text(json.dumps({**result, "epochs": {
            e: {"squad": (evaluation or {}).get("epochs", {}).get(e), "accuracy": accuracy.get(e)} for e in epochs}},
            indent=2), encoding="utf-8")
        write_manifest(out, stage=STAGE, input_digest=sha256_json([train, evaluation, prediction]),
                       config_digest=sha256_json(spec.evaluation.gate.wire()), outputs=result["artifacts"],
                       counts={"epochs": len(epochs)}, extra={"result": result})
    return result
