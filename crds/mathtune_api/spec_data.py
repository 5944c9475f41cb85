"""spec.model and spec.data: the base model and the training data."""
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import Field, field_validator

from .base import ApiModel, F, block
from .schema import Raw
from .vocabulary import PATH, LONG, SHA256, TYPE_NAME, URI, immutable, rule

Sha256 = Annotated[str, Field(pattern=SHA256, max_length=64)]
ProblemType = Annotated[str, Field(description="A problem type.", pattern=TYPE_NAME, max_length=63)]
TemplateName = Literal["alpaca", "vicuna", "multiple-choice"]


class Tokenizer(ApiModel):
    uri: str = F("Tokenizer file. " + URI + " Empty: the family's default tokenizer.", "", max_length=PATH)
    format: Literal["hf-json", "tiktoken", "sentencepiece"] = F(
        "hf-json: a Hugging Face tokenizer.json (Llama 3); tiktoken; sentencepiece: a tokenizer.model (InternLM, "
        "LLaMA).", "hf-json")


class Tiny(ApiModel):
    RULES = [rule("self.hiddenSize % self.numHeads == 0",
                  "spec.model.tiny.hiddenSize must be a multiple of spec.model.tiny.numHeads", ".hiddenSize")]
    num_layers: int = F("Transformer layers.", 2, ge=1, le=64)
    hidden_size: int = F("Hidden size; a multiple of numHeads.", 64, ge=8, le=8192)
    num_heads: int = F("Attention heads.", 4, ge=1, le=128)
    vocab_size: int = F("Vocabulary size.", 512, ge=32, le=262144)


Family = Literal["llama3-8b", "internlm-7b", "llama-7b", "tiny-llama"]


class ModelSpec(ApiModel):
    RULES = [rule("self.family == 'tiny-llama' || size(self.checkpoint) > 0",
                  "spec.model.checkpoint is required for families other than tiny-llama", ".checkpoint",
                  "FieldValueRequired"),
             immutable("model")]
    family: Family = F("Model family. llama3-8b (seeds 000, 001, 003), internlm-7b (seed 002), llama-7b (seed 004) "
                       "run on Ascend with MindFormers; tiny-llama is a small randomly initialised Llama built from "
                       "`tiny`, for the cpu profile.", "llama3-8b")
    checkpoint: str = F("The base model's weights: a MindSpore checkpoint (.ckpt), a .safetensors file, or a "
                        "directory of safetensors shards; Hugging Face Llama names are converted with MindFormers' "
                        "converter, once per volume. " + URI + " Required for every family except tiny-llama.", "",
                        max_length=PATH)
    checkpoint_sha256: Sha256 = F("Optional SHA-256 of the checkpoint file, verified after download (or before use, "
                                  "for a file on the volume).", "")
    tokenizer: Tokenizer = block("The tokenizer matching the checkpoint.", Tokenizer)
    tiny: Tiny = block("Shape of the tiny-llama model (cpu profile only; weights are random, seeded by "
                       "training.seed).", Tiny)


class Source(ApiModel):
    uri: str = F("Data file, or a directory on the work volume: every file of the format in it (*.csv for "
                 "mmlu-csv, *.jsonl and *.json otherwise), read in name order (seed 002's MMLU and CMMLU CSVs). "
                 + URI, max_length=PATH, min_length=1)
    format: Literal["contest-jsonl", "alpaca-json", "mmlu-csv"] = F(
        "contest-jsonl: JSON lines {problem, solution} (the contest's train.json); alpaca-json: a JSON list of "
        "{instruction, input, output} (BELLE school_math, converted MMLU); mmlu-csv: MMLU/CMMLU CSV files "
        "(question, A-D, answer).", "contest-jsonl")
    sha256: Sha256 = F("Optional SHA-256 of the file, verified before use (a single file only).", "")


class MixSourceData(ApiModel):
    uri: str = F("Data file. " + URI, max_length=PATH, min_length=1)
    format: Optional[Literal["squad-jsonl", "squad-json", "contest-jsonl", "alpaca-json"]] = F(
        "squad-jsonl (when absent) / squad-json: reading comprehension, asked as evaluate asks SQuAD; "
        "contest-jsonl, alpaca-json: instruction rows, asked with `template`.", None)
    sha256: Optional[Sha256] = F("Optional SHA-256 of the file, verified before use.", None)


class MixTemplate(ApiModel):
    name: TemplateName = F("alpaca, vicuna or multiple-choice.")
    system_prompt: Optional[str] = F("System prompt; empty: the template's default.", None, max_length=LONG)


class MixSource(ApiModel):
    """A source mixed in."""
    # No defaults inside list items: run-local (no API server) could not apply them the same way.
    RULES = [rule("has(self.share) != has(self.count)", "spec.data.mix[]: give exactly one of share and count")]
    name: Optional[str] = F("Name in status and in the training rows' type; absent: mix<index>.", None,
                            pattern=r"^([a-z][a-z0-9_-]*)?$", max_length=63)
    source: MixSourceData = F("The rows to mix in.")
    share: Optional[float] = F("Share of the final training set drawn from this source, in (0, 1); give share or "
                               "count.", None, gt=0, lt=1)
    count: Optional[int] = F("Rows drawn from this source (repeating them when it has fewer); give share or count.",
                             None, ge=1)
    template: Optional[MixTemplate] = F("How contest-jsonl and alpaca-json rows are asked; absent: the run's "
                                        "template.", None)


class ExtraRule(ApiModel):
    """A classification rule: a row whose question matches every given matcher gets `type`."""
    RULES = [rule("size(self.prefix) + size(self.suffix) + size(self.contains) + size(self.regex) > 0",
                  "spec.data.classify.extraRules[]: give at least one of prefix, suffix, contains, regex")]
    type: str = F("Problem type assigned to matching rows (lower_snake_case).", pattern=TYPE_NAME, max_length=63)
    prefix: str = F("The question (spaces removed) starts with this.", "", max_length=256)
    suffix: str = F("The question (spaces removed) ends with this.", "", max_length=256)
    contains: str = F("The question contains this.", "", max_length=256)
    regex: str = F("A Python regular expression searched in the question.", "", max_length=256)


class Classify(ApiModel):
    extra_rules: List[ExtraRule] = F("Rules tried, in order, before the built-in contest rules.",
                                     default_factory=list, max_length=32)


class Sample(ApiModel):
    RULES = [rule("!(self.mode in ['quota', 'counts']) || (has(self.quotas) && size(self.quotas) > 0)",
                  "spec.data.sample.quotas must list at least one type when mode is quota or counts", ".quotas",
                  "FieldValueRequired")]
    mode: Literal["none", "quota", "counts", "fraction"] = F(
        "none: all rows; quota: `quotas[type]` rows per type, upsampling types with fewer rows (seed 000); counts: "
        "exactly `quotas[type]` rows, an error when fewer exist (seed 001); fraction: a random `fraction` of all "
        "rows (seed 003).", "none")
    seed: int = F("Random seed for sampling.", 42, ge=0)
    quotas: Optional[Dict[str, Annotated[int, Field(ge=0, description="Rows of this type.")]]] = F(
        "Rows per problem type for quota and counts modes; types not listed are dropped.", None)
    fraction: float = F("Share of rows kept in fraction mode, in (0, 1].", 1.0, gt=0, le=1)


class ChainOfThought(ApiModel):
    enabled: bool = F("Rewrite the answers of supported types as step-by-step solutions.", False)
    decimals: int = F("Decimals results are rounded to.", 2, ge=0, le=10)
    types: List[ProblemType] = F("Problem types to rewrite; empty: seed 000's set.", default_factory=list,
                                 json_schema_extra={"x-kubernetes-list-type": "set"})


class Template(ApiModel):
    name: TemplateName = F("alpaca (seeds 000, 001, 003); vicuna (FastChat conversation, seed 004); "
                           "multiple-choice (seed 002).", "alpaca")
    system_prompt: str = F("System prompt; empty: the template's default.", "", max_length=LONG)


class Batching(ApiModel):
    mode: Literal["auto", "bucketed", "padded"] = F("auto, bucketed or padded.", "auto")
    multiple: Literal[1, 2, 4, 8, 16, 32, 64] = F(
        "bucketed: a batch's width (tokens per row, before the one-token shift) is a multiple of this; larger "
        "values compile fewer shapes, smaller ones pad less.", 8)


SEQ_LENGTH_RULE = rule("type(self) == int ? (int(self) >= 16 && int(self) <= 32768) : string(self) == 'auto'",
                       "spec.data.seqLength must be an integer from 16 to 32768 or the string \"auto\"")
SEQ_LENGTH = {"x-kubernetes-int-or-string": True,
              "description": "Tokens per sample (MindRecord rows hold seqLength+1). An integer (16-32768), or "
                             "\"auto\": the smallest multiple of 64 that fits seqLengthPercentile of the prepared "
                             "rows.",
              "default": 512, "x-kubernetes-validations": [SEQ_LENGTH_RULE]}

MIX_SHARES = rule("self.filter(m, has(m.share)).map(m, m.share).sum() < 1.0",
                  "spec.data.mix: the shares must add up to less than 1 (the rest is the main source's rows)")


class Data(ApiModel):
    RULES = [immutable("data"),
             rule("self.batching.mode == 'padded' || type(self.seqLength) != int || "
                  "int(self.seqLength) % self.batching.multiple == 0",
                  "spec.data.seqLength must be a multiple of spec.data.batching.multiple unless batching is padded",
                  field_path=".seqLength")]
    source: Source = F("The raw training data.")
    mix: List[MixSource] = F("Other data replayed into the training set to keep the base model's original ability "
                             "(e.g. 10% reading-comprehension rows beside the math rows). Rows are drawn seeded by "
                             "sample.seed; prepare counts them per source.", default_factory=list, max_length=16,
                             json_schema_extra={"x-kubernetes-validations": [MIX_SHARES]})
    leakage: Literal["drop", "fail", "warn"] = F(
        "What prepare does with training rows (mix included) that are also rows evaluate or predict will score, "
        "exactly or as near-duplicates: drop them (counted), fail the stage, or warn (keep them, counted, an "
        "Event).", "drop")
    max_bad_rows: int = F("Rows that cannot be parsed: -1 counts and reports them and never fails; N fails the "
                          "prepare stage when there are more than N.", -1, ge=-1)
    dedupe: bool = F("Drop repeated (problem, solution) pairs (809,993 -> 548,942 rows in the contest data).", True)
    classify: Classify = block("Classifying rows into problem types (used by sampling and per-type accuracy).",
                               Classify)
    sample: Sample = block("Which rows of each type go into the training set.", Sample)
    chain_of_thought: ChainOfThought = block("Rewriting answers as worked steps (seed 000).", ChainOfThought)
    template: Template = block("The prompt template.", Template)
    seq_length: Annotated[Union[int, Literal["auto"]], Raw(SEQ_LENGTH)] = 512
    seq_length_percentile: float = F("For seqLength auto: the share (percent) of rows that must fit.", 100,
                                     ge=50, le=100)
    shards: int = F("MindRecord shard files tokenize writes.", 1, ge=1, le=64)
    batching: Batching = block(
        "How rows become training batches. bucketed: rows of similar length share a batch, padded only to that "
        "batch's longest row (MindFormers' dynamic_batch; the NPUs stop computing padding); padded: every row "
        "padded to seqLength; auto: bucketed where it runs, padded where not (LoRA on wo: MindFormers 1.9 fails "
        "on a symbolic sequence length there).", Batching)

    @field_validator("seq_length", mode="before")
    @classmethod
    def _seq_length(cls, value: Any) -> Any:
        # Before the union's own checks, which would name its members instead.
        if value == "auto" or (type(value) is int and 16 <= value <= 32768):
            return value
        raise ValueError(SEQ_LENGTH_RULE["message"])

    @field_validator("mix")
    @classmethod
    def _shares(cls, mix: List[MixSource]) -> List[MixSource]:
        if sum(m.share for m in mix if m.share is not None) >= 1.0:
            raise ValueError(MIX_SHARES["message"])
        return mix
