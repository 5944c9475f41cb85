"""The MathFinetune status: what the operator observed and the stages reported.

The operator writes status as merge patches; these models are its schema and
its reference, and what clients (kubectl mathtune) read it into.
"""
from typing import Annotated, Dict, List, Literal, Optional

from pydantic import Field

from .base import ApiModel, F
from .schema import Format, Raw
from .vocabulary import LONG, PATH, SHORT

Time = Annotated[str, Format("date-time")]
Num = Optional[float]
Int = Optional[int]
Ints = Optional[List[Annotated[int, Field(description="An epoch.")]]]


class Condition(ApiModel):
    """A condition (Kubernetes API conventions)."""
    type: str = F("Condition type: Succeeded, Failed, Ready, Suspended, VolumeSufficient, or one per stage "
                  "(Prepared, Tokenized, Trained, Merged, Evaluated, Predicted, Reported, Exported).")
    status: Literal["True", "False", "Unknown"] = F("True, False or Unknown.")
    reason: Optional[str] = F("CamelCase reason.", None)
    message: Optional[str] = F("Human-readable detail.", None, max_length=LONG * 8)
    last_transition_time: Optional[Time] = F("When status last changed.", None)
    observed_generation: Int = F("metadata.generation this condition was set for.", None)


class FaultyDevice(ApiModel):
    name: str = F("The NPU, as the device plugin names it (e.g. Ascend910-3).", max_length=SHORT)
    why: str = F("What the node's device-info ConfigMap says of it: unhealthy, network unhealthy or manually "
                 "separated.", max_length=SHORT)


class DeviceFault(ApiModel):
    """An attempt of training stopped because an NPU it held went out of service."""
    node: str = F("The node of the device.", max_length=SHORT)
    pod: str = F("The pod that held it.", max_length=SHORT)
    devices: List[FaultyDevice] = F("The pod's devices out of service (its huawei.com/AscendReal against the node's "
                                    "mindx-dl-deviceinfo ConfigMap).", max_length=16)
    attempt: int = F("The attempt stopped.")
    detected_at: Time = F("When the operator saw the fault.")
    step_at_fault: Int = F("Training steps done (over all epochs) when the fault was seen, from the last progress "
                           "line read.", None)
    resumed_from_epoch: Int = F("The epoch of the save the next successful attempt resumed from.", None)
    resumed_from_checkpoint: Optional[str] = F("That save's file (rank 0).", None, max_length=SHORT)
    resumed_from_step: Int = F("The global step of that save.", None)
    steps_redone: Int = F("stepAtFault - resumedFromStep: steps trained again because of the fault.", None)


class StageRow(ApiModel):
    """One stage of the run."""
    name: str = F("Stage name.")
    job_name: Optional[str] = F("The stage's Job.", None)
    state: Optional[str] = F("Pending, Running, Retrying, Suspended, Succeeded or Failed.", None)
    start_time: Optional[Time] = F("When the Job was created.", None)
    completion_time: Optional[Time] = F("When the stage ended.", None)
    attempts: Int = F("Pods started for this stage (1 + retries); for multi-node training, attempts of every rank.",
                      None)
    pod_group: Optional[str] = F("UID of the Job whose Volcano PodGroup the operator made (a new attempt gets its "
                                 "own).", None)
    summary: Optional[str] = F("One-line summary of the stage's result.", None, max_length=LONG)
    message: Optional[str] = F("The failed pod's message (failure only).", None, max_length=LONG * 8)
    device_faults: Optional[List[DeviceFault]] = F("Training attempts stopped by an NPU fault, oldest first (the "
                                                   "last 10).", None, max_length=10)


class EpochScores(ApiModel):
    """Scores of one epoch."""
    f1: Num = F("SQuAD F1 (0-100).", None)
    em: Num = F("SQuAD EM (0-100).", None)
    accuracy: Num = F("Math (or choice) accuracy (0-1).", None)
    gate_passed: Optional[bool] = F("Whether F1/EM pass the gate.", None)


class Rows(ApiModel):
    read: Int = F("Rows read.", None)
    bad: Int = F("Rows that could not be parsed.", None)
    deduped: Int = F("Rows after dedupe.", None)
    duplicates: Int = F("Rows dropped as repeats of a (problem, solution) pair.", None)
    sampled: Int = F("Rows of the main source in the training set.", None)
    trained: Int = F("Rows in the training set: the main source's and the mix's.", None)
    other: Int = F("Rows no rule classified.", None)
    classified: Optional[Dict[str, int]] = F("Rows per problem type after dedupe.", None, max_length=256)


class MixRows(ApiModel):
    """One source."""
    name: Optional[str] = F("The source's name.", None)
    drawn: Int = F("Rows drawn.", None)
    rows: Int = F("Rows kept (drawn less those the leakage check dropped).", None)


class Leakage(ApiModel):
    mode: Optional[str] = F("drop, fail or warn.", None)
    exact: Int = F("Rows found as they are (after normalisation).", None)
    near: Int = F("Rows found as near-duplicates (the same question with the same numbers).", None)
    dropped: Int = F("Rows removed from the training set.", None)
    by_source: Optional[Dict[str, int]] = F("Rows found per training source (spec.data.source, spec.data.mix[i]).",
                                            None, max_length=32)
    against: Optional[Dict[str, int]] = F("Rows found per held-out set.", None, max_length=8)
    unchecked: Optional[Dict[str, Annotated[str, Field(max_length=300)]]] = F(
        "Held-out sets prepare could not read, and why (the stage that scores them reads them again and fails).",
        None, max_length=8)


class Volume(ApiModel):
    needed_bytes: Int = F("Bytes tokenize, train and merge will write (docs/contract.md: disk).", None)
    free_bytes: Int = F("Bytes free on the work volume when prepare ended.", None)


class Tokenized(ApiModel):
    rows: Int = F("Rows written.", None)
    seq_length: Int = F("Sequence length used.", None)
    truncated: Int = F("Rows cut to seqLength.", None)
    padding_share: Num = F("Share of padding tokens (0-1).", None)
    shards: Int = F("MindRecord shard files.", None)


class ClosestToGate(ApiModel):
    epoch: Int = F("The epoch.", None)
    f1: Num = F("Its SQuAD F1.", None)
    em: Num = F("Its SQuAD EM.", None)
    f1_short: Num = F("Points of F1 below the gate's threshold.", None)
    em_short: Num = F("Points of EM below the gate's threshold.", None)


class ExportRow(ApiModel):
    """One exported format."""
    format: Optional[str] = F("peft or hf.", None)
    epoch: Int = F("The epoch exported.", None)
    location: Optional[str] = F("Its directory on the work volume, relative to the run's directory.", None,
                                max_length=PATH)
    destination: Optional[str] = F("Where it was copied (spec.export.destination), if anywhere.", None,
                                   max_length=PATH)
    bytes: Int = F("Size of its files.", None)
    files: Int = F("Number of its files.", None)
    sha256: Optional[str] = F("sha256 of its SHA256SUMS file, which lists every file's sha256.", None, max_length=64)


PlainText = Annotated[str, Raw({"type": "string"})]
Scores = Optional[Dict[str, float]]


class DataCache(ApiModel):
    """The work volume's cache of prepared and tokenized data (docs/contract.md: the work volume)."""
    key: Optional[str] = F("First 16 hex digits of the data recipe's key: runs with the same key share prepare's "
                           "and tokenize's outputs.", None, max_length=64)
    prepare_reused: Optional[bool] = F("Whether prepare reused another run's output instead of building it.", None)
    tokenize_reused: Optional[bool] = F("Whether tokenize reused another run's output instead of building it.", None)
    built_by: Optional[str] = F("The run that built the output reused.", None, max_length=SHORT)


class Results(ApiModel):
    rows: Optional[Rows] = F("Rows kept at each prepare step.", None)
    mix: Optional[List[MixRows]] = F("Rows of each spec.data.mix source in the training set.", None, max_length=16)
    leakage: Optional[Leakage] = F("Training rows found among the rows evaluate or predict score "
                                   "(spec.data.leakage).", None)
    volume: Optional[Volume] = F("The work volume against what the stages after prepare will write (estimated when "
                                 "prepare ended; condition VolumeSufficient says whether it fits).", None)
    tokenize: Optional[Tokenized] = F("What tokenize wrote.", None)
    data_cache: Optional[DataCache] = F("Whether prepare and tokenize built their outputs or reused those of "
                                        "another run with the same data recipe on the work volume.", None)
    steps: Int = F("Training steps run.", None)
    final_loss: Num = F("Loss at the end of training.", None)
    checkpoints: Ints = F("Epochs with a complete checkpoint.", None, max_length=1000)
    trainable_params: Int = F("LoRA parameters trained.", None)
    total_params: Int = F("Parameters of the model with adapters.", None)
    low_param_ratio: Num = F("trainableParams / totalParams.", None)
    base_f1: Num = F("Base model SQuAD F1.", None)
    base_em: Num = F("Base model SQuAD EM.", None)
    epochs: Optional[Dict[str, EpochScores]] = F("Scores per epoch (key: the epoch).", None, max_length=1000)
    best_epoch: Int = F("The chosen epoch: the best math accuracy among those that pass the gate.", None)
    passed_epochs: Ints = F("Epochs whose F1/EM pass the original-capability gate.", None, max_length=1000)
    base_accuracy: Num = F("Math (or choice) accuracy of the base model (0-1), the fine-tune's yardstick.", None)
    f1: Num = F("SQuAD F1 of the chosen (or best so far) epoch.", None)
    em: Num = F("SQuAD EM of the chosen (or best so far) epoch.", None)
    math_accuracy: Num = F("Math (or choice) accuracy of the chosen (or best so far) epoch (0-1): each output's "
                           "answer as a careful grader reads it (the answer it commits to, not a ramble after it; "
                           "docs/answer-reader.md).", None)
    per_type: Scores = F("Accuracy per problem type.", None, max_length=256)
    math_accuracy_contest_rule: Num = F("Math accuracy of the chosen epoch under the contest's rule (the last number "
                                        "of the output), for comparison with the seeds' reported figures.", None)
    base_accuracy_contest_rule: Num = F("The base model's math accuracy under the contest's rule.", None)
    per_type_contest_rule: Scores = F("Accuracy per problem type under the contest's rule.", None, max_length=256)
    math_accuracy_truth: Num = F("Math accuracy of the chosen epoch against the exact answers computed from the "
                                 "questions (computable types only), where mathAccuracy is against the dataset's "
                                 "references (the contest's, from float arithmetic).", None)
    base_accuracy_truth: Num = F("The base model's math accuracy against the exact answers.", None)
    per_type_truth: Scores = F("Accuracy per problem type against the exact answers.", None, max_length=256)
    gate_passed: Optional[bool] = F("Whether the chosen epoch passes the original-capability gate.", None)
    closest_to_gate: Optional[ClosestToGate] = F("When no epoch passes the gate: the one that came nearest.", None)
    artifacts: Optional[Dict[str, PlainText]] = F("Paths of outputs on the work volume (adapter, merged checkpoint, "
                                                  "report, plots).", None)
    exports: Optional[List[ExportRow]] = F("What the export stage wrote, one row per format.", None, max_length=2)


class Progress(ApiModel):
    stage: Optional[str] = F("The stage reporting.", None)
    epoch: Int = F("Current epoch.", None)
    epochs: Int = F("Epochs in total.", None)
    step: Int = F("Step within the epoch.", None)
    steps: Int = F("Steps per epoch.", None)
    loss: Num = F("Latest training loss; null when it is not a finite number (see lossNonFinite).", None)
    loss_non_finite: Optional[Literal["NaN", "Infinity", "-Infinity"]] = F(
        "NaN, Infinity or -Infinity when the latest loss is one (JSON has no such numbers).", None)
    epoch_loss: Optional[Dict[str, float]] = F(
        "Training: the mean logged loss of each complete epoch, by epoch (what a sweep's early stopping compares).",
        None, max_length=1000)
    samples_per_second: Num = F("Throughput.", None)
    eta_seconds: Int = F("Estimated seconds left.", None)
    percent: Num = F("Share done, 0-100.", None)
    summary: Optional[str] = F("Short text for kubectl get: epoch e/E step s/S.", None)
    updated_at: Optional[Time] = F("When the line was read.", None)


class Display(ApiModel):
    f1: Optional[str] = F("SQuAD F1 of the chosen epoch, two decimals.", None)
    em: Optional[str] = F("SQuAD EM of the chosen epoch, two decimals.", None)
    math_accuracy: Optional[str] = F("Math accuracy of the chosen epoch, as a percentage.", None)


KEYED = {"x-kubernetes-list-type": "map"}


class MathFinetuneStatus(ApiModel):
    """Observed state of the run."""
    observed_generation: Int = F("metadata.generation the status reflects.", None)
    applied_suspend: Optional[bool] = F("spec.runPolicy.suspend as the operator last applied it: it changes a Job's "
                                        "suspend only when the run's changes, and leaves the Job to Kueue or an "
                                        "administrator otherwise.", None)
    phase: Optional[str] = F("Pending, Running, Suspended, Succeeded or Failed.", None)
    stage: Optional[str] = F("The current stage, Done when all succeeded, or the failed stage.", None)
    start_time: Optional[Time] = F("When the first stage started.", None)
    completion_time: Optional[Time] = F("When the run ended.", None)
    jobs_deleted_at: Optional[Time] = F("When ttlSecondsAfterFinished removed the run's Jobs.", None)
    conditions: Optional[List[Condition]] = F(
        "Conditions: Succeeded, Failed, Ready, Suspended, VolumeSufficient and one per stage.", None, max_length=32,
        json_schema_extra={**KEYED, "x-kubernetes-list-map-keys": ["type"]})
    stages: Optional[List[StageRow]] = F("One row per planned stage, in order.", None, max_length=16,
                                         json_schema_extra={**KEYED, "x-kubernetes-list-map-keys": ["name"]})
    progress: Optional[Progress] = F("Live progress of the running stage, from its newest mathtune-progress log "
                                     "line.", None)
    results: Optional[Results] = F("What the stages reported.", None)
    display: Optional[Display] = F("The results as people read them, for kubectl get's columns (status.results keeps "
                                   "the numbers).", None)
