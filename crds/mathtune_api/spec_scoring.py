"""spec.evaluation, spec.prediction and spec.export: how the run is judged and handed on."""
from typing import Annotated, List, Literal, Optional

from pydantic import Field

from .base import ApiModel, F, block
from .spec_data import ProblemType
from .vocabulary import PATH, URI, immutable, rule

Epoch = Annotated[int, Field(description="An epoch (1-based).", ge=1)]


class EvaluationSet(ApiModel):
    uri: str = F("SQuAD file. " + URI, "", max_length=PATH)
    format: Literal["squad-json", "squad-jsonl"] = F(
        "squad-json: SQuAD dev-v1.1 JSON (first question of each paragraph: 2,067 samples); squad-jsonl: JSON "
        "lines {context, question, answers}.", "squad-json")


class Gate(ApiModel):
    RULES = [rule("self.mode == 'absolute' || (self.f1 > 0.0 && self.f1 <= 1.0 && self.em > 0.0 && self.em <= 1.0)",
                  "spec.evaluation.gate: in relative mode f1 and em are fractions in (0, 1]", ".f1")]
    mode: Literal["relative", "absolute"] = F(
        "relative: f1/em are fractions of the base model's scores (contest: 0.9); absolute: minimum scores on the "
        "0-100 scale.", "relative")
    f1: float = F("Minimum F1 (relative: fraction in (0, 1]; absolute: 0-100).", 0.9, ge=0, le=100)
    em: float = F("Minimum EM (relative: fraction in (0, 1]; absolute: 0-100).", 0.9, ge=0, le=100)


class BaseScores(ApiModel):
    f1: Optional[float] = F("The base model's SQuAD F1.", None, ge=0, le=100)
    em: Optional[float] = F("The base model's SQuAD EM.", None, ge=0, le=100)


class Evaluation(ApiModel):
    RULES = [rule("!self.enabled || size(self.dataset.uri) > 0",
                  "spec.evaluation.dataset.uri is required when evaluation is enabled", ".dataset.uri",
                  "FieldValueRequired"),
             immutable("evaluation")]
    enabled: bool = F("Evaluate (needed for the gate).", True)
    dataset: EvaluationSet = block("The evaluation set.", EvaluationSet)
    max_samples: int = F("Evaluate at most this many samples (0: all).", 0, ge=0)
    max_new_tokens: int = F("Tokens generated per answer.", 20, ge=1, le=4096)
    answer_rule: Literal["first", "best"] = F(
        "Which gold answers a prediction is scored against: first (the first answer only, as MindFormers' "
        "EmF1Metric and the contest's base scores 59.87/44.17) or best (the best over all answers, as the official "
        "SQuAD v1.1 script; higher).", "first")
    epochs: List[Epoch] = F("Epochs to evaluate; empty: every saved epoch.", default_factory=list, max_length=1000,
                            json_schema_extra={"x-kubernetes-list-type": "set"})
    gate: Gate = block("The original-capability gate: an epoch passes when its SQuAD scores are high enough.", Gate)
    base_scores: BaseScores = block("The base model's known scores {f1, em} (0-100); given, the base model is not "
                                    "evaluated (contest Llama3-8B: 59.87 / 44.17).", BaseScores)


class PredictionSet(ApiModel):
    uri: str = F("Held-out file. " + URI, "", max_length=PATH)
    format: Literal["contest-jsonl", "mmlu-csv", "alpaca-json"] = F(
        "contest-jsonl: {problem, solution} lines; mmlu-csv: multiple choice; alpaca-json.", "contest-jsonl")


class Prediction(ApiModel):
    RULES = [rule("!self.enabled || size(self.dataset.uri) > 0",
                  "spec.prediction.dataset.uri is required when prediction is enabled", ".dataset.uri",
                  "FieldValueRequired"),
             immutable("prediction")]
    enabled: bool = F("Predict and score.", True)
    dataset: PredictionSet = block("The held-out set.", PredictionSet)
    max_samples: int = F("Predict at most this many rows (0: all).", 0, ge=0)
    types: List[ProblemType] = F("Problem types to predict (as the data side classifies the questions, extra rules "
                                 "first); empty: every row. Taken before maxSamples.", default_factory=list,
                                 json_schema_extra={"x-kubernetes-list-type": "set"})
    tolerance: float = F("Absolute tolerance when comparing the last number of an answer.", 0.01, ge=0)
    max_new_tokens: int = F("Tokens generated per answer.", 128, ge=1, le=8192)


ExportFormat = Annotated[Literal["peft", "hf"], Field(description="An export format: peft or hf.")]


class Export(ApiModel):
    formats: List[ExportFormat] = F(
        "peft: the LoRA adapter as PEFT saves one (adapter_config.json, adapter_model.safetensors); hf: the merged "
        "model in Hugging Face's layout (config.json, sharded safetensors, tokenizer).",
        default_factory=lambda: ["peft", "hf"], max_length=2, min_length=1,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    epoch: int = F("The epoch to export; 0: the report's best epoch (the best that passed the gate).", 0, ge=0)
    when_gate_fails: bool = F("Export the best epoch even when no epoch passed the original-ability gate (else the "
                              "export stage is skipped, saying why).", False)
    destination: str = F("Where to copy the export besides the run's directory: a path on the work volume "
                         "(absolute, or relative to storage.dataPath) or s3://bucket/prefix (the data sources' "
                         "endpoint and credentials). Files go under <destination>/<format>/. Empty: the run's "
                         "directory only.", "", pattern=r"^(s3://[^/\s]+/[^\s]*|[^:\s]*)$", max_length=PATH)
    base_model: str = F("base_model_name_or_path of the adapter and the model card (e.g. the hub name of the base "
                        "model); empty: spec.model.checkpoint.", "", max_length=PATH)
    max_shard_size: str = F("Largest safetensors shard of the hf format, as Hugging Face spells it.", "5GB",
                            pattern=r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)$", max_length=32)
