"""spec.lora, spec.training and spec.resources: what is trained, how, on what."""
from typing import Annotated, List, Literal, Union

from pydantic import Field

from .base import ApiModel, F, block
from .vocabulary import immutable, rule

ModuleName = Annotated[str, Field(description="A module name.", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=63)]


class Lora(ApiModel):
    RULES = [immutable("lora")]
    rank: int = F("Rank r of the update B.A (8 in every seed).", 8, ge=1, le=256)
    alpha: float = F("Scaling numerator: the update is scaled by alpha / rank (16 in every seed).", 16, gt=0,
                     le=4096)
    dropout: float = F("Dropout on the adapter input, in [0, 1).", 0.05, ge=0, lt=1)
    target_modules: List[ModuleName] = F(
        "Projections that get adapters, by MindFormers parameter name suffix (wq, wk, wv, wo, w1, w2, w3); "
        "rendered to MindFormers' '.*wq|.*wv'.", default_factory=lambda: ["wq", "wv"], max_length=16, min_length=1,
        json_schema_extra={"x-kubernetes-list-type": "set"})

    @property
    def whole_alpha(self) -> Union[int, float]:
        """alpha as MindFormers' configs write it: a whole number stays an int
        (a float field reads `16` from YAML as 16.0; MindFormers reads lora_alpha as an int)."""
        return int(self.alpha) if float(self.alpha).is_integer() else self.alpha


class Optimizer(ApiModel):
    type: Literal["FP32StateAdamWeightDecay", "AdamWeightDecay", "AdamW", "Adam"] = F(
        "Optimizer class.", "FP32StateAdamWeightDecay")
    beta1: float = F("First-moment decay, in [0, 1).", 0.9, ge=0, lt=1)
    beta2: float = F("Second-moment decay, in [0, 1).", 0.95, ge=0, lt=1)
    eps: float = F("Denominator epsilon, > 0.", 1.0e-8, gt=0, le=1)
    weight_decay: float = F("Weight decay, >= 0.", 0.0, ge=0, le=1)


class LrSchedule(ApiModel):
    RULES = [rule("self.lrEnd <= self.learningRate",
                  "spec.training.lrSchedule.lrEnd must not exceed spec.training.lrSchedule.learningRate", ".lrEnd")]
    type: Literal["CosineWithWarmUpLR", "LinearWithWarmUpLR", "ConstantWarmUpLR", "constant"] = F(
        "Schedule class (MindFormers'); constant: the learning rate throughout, no warm-up (MindFormers' "
        "ConstantWarmUpLR without warm-up).", "CosineWithWarmUpLR")
    learning_rate: float = F("Peak learning rate, > 0.", 1.0e-4, gt=0, le=1)
    lr_end: float = F("Final learning rate, <= learningRate.", 0.0, ge=0, le=1)
    warmup_ratio: float = F("Share of steps spent warming up, in [0, 1].", 0.03, ge=0, le=1)


class Checkpoint(ApiModel):
    RULES = [rule("self.everyEpoch != (self.saveSteps > 0)",
                  "spec.training.checkpoint: set exactly one of everyEpoch: true or saveSteps > 0", ".saveSteps")]
    every_epoch: bool = F("Save once per epoch (steps computed from the data).", True)
    save_steps: int = F("Save every N steps (0: not by steps).", 0, ge=0)
    keep_max: int = F("Checkpoints kept per rank (older ones are deleted).", 5, ge=1, le=1000)


class Training(ApiModel):
    RULES = [immutable("training")]
    epochs: int = F("Passes over the training set.", 1, ge=1, le=1000)
    batch_size: int = F("Samples per step per data-parallel rank.", 32, ge=1, le=4096)
    sink_mode: bool = F("Data sinking: sinkSize steps per host round trip (faster on Ascend).", True)
    sink_size: int = F("Steps per sink.", 2, ge=1, le=1000)
    seed: int = F("Random seed for initialisation and shuffling.", 0, ge=0)
    optimizer: Optimizer = block("The optimizer.", Optimizer)
    lr_schedule: LrSchedule = block("The learning-rate schedule.", LrSchedule)
    checkpoint: Checkpoint = block("When checkpoints are saved. Exactly one of everyEpoch and saveSteps > 0.",
                                   Checkpoint)
    max_device_memory: str = F("MindSpore context max_device_memory per NPU, e.g. 58GB.", "58GB",
                               pattern=r"^[1-9][0-9]*GB$", max_length=8)


class Parallel(ApiModel):
    RULES = [rule("self.microBatchNum >= self.pipelineStage",
                  "spec.resources.parallel.microBatchNum must be at least pipelineStage", ".microBatchNum")]
    data_parallel: int = F("Data-parallel ranks.", 4, ge=1, le=512)
    model_parallel: int = F("Tensor-parallel ranks (contest: 4).", 1, ge=1, le=64)
    pipeline_stage: int = F("Pipeline stages.", 1, ge=1, le=64)
    micro_batch_num: int = F("Micro-batches per step (pipeline parallelism); >= pipelineStage.", 1, ge=1, le=1024)


class Resources(ApiModel):
    RULES = [rule("self.parallel.dataParallel * self.parallel.modelParallel * self.parallel.pipelineStage == "
                  "self.npusPerNode * self.nodes",
                  "spec.resources.parallel: dataParallel x modelParallel x pipelineStage must equal "
                  "npusPerNode x nodes", ".parallel"),
             immutable("resources")]
    npus_per_node: Literal[1, 2, 4, 8] = F("NPUs (huawei.com/Ascend910) per training pod: 1, 2, 4 or 8 (one HCCS "
                                           "ring for 4). In the cpu profile: worker processes.", 4)
    nodes: int = F("Training nodes; more than 1 runs training as an Indexed Job plus a headless Service.", 1, ge=1,
                   le=64)
    request_npus_on_cpu: bool = F("cpu profile: the training pod asks for npusPerNode huawei.com/Ascend910 as in "
                                  "the ascend profile, and its workers follow the devices allocated "
                                  "(ASCEND_VISIBLE_DEVICES). For clusters whose nodes emulate NPUs, such as the "
                                  "local demo's node; the ascend profile always asks.", False)
    parallel: Parallel = block("MindFormers parallel_config; dataParallel x modelParallel x pipelineStage must equal "
                               "npusPerNode x nodes.", Parallel)

    @property
    def devices(self) -> int:
        """Training ranks in all: npusPerNode x nodes."""
        return self.npus_per_node * self.nodes
