"""The MathFinetune spec: one LoRA fine-tuning run, every block typed."""
from typing import Annotated, Any, Dict, List, Literal, Optional


from .base import ApiModel, F, block
from .kube import pod_templates_schema, toleration_schema
from .schema import Raw
from .spec_cluster import Images, RunPolicy, Scheduling, Storage
from .spec_data import Data, ModelSpec
from .spec_scoring import Evaluation, Export, Prediction
from .spec_training import Lora, Resources, Training
from .vocabulary import rule

PROFILE_IMMUTABLE = rule("self.profile == oldSelf.profile", "spec.profile is immutable once the run exists",
                         ".profile")


class MathFinetuneSpec(ApiModel):
    """A LoRA fine-tune of an LLM for math: data preparation, tokenization, training on Ascend NPUs (or CPU),
    checkpoint merge, SQuAD evaluation, math prediction and a report, each a Job."""
    RULES = [
        rule("(self.profile == 'cpu') == (self.model.family == 'tiny-llama')",
             "spec.model.family: tiny-llama runs with spec.profile cpu, and the cpu profile runs only tiny-llama",
             ".model.family"),
        rule("self.profile == 'ascend' || (self.resources.parallel.modelParallel == 1 && "
             "self.resources.parallel.pipelineStage == 1)",
             "spec.resources.parallel: the cpu profile supports data parallelism only (modelParallel and "
             "pipelineStage must be 1)", ".resources.parallel"),
        rule("self.evaluation.epochs.all(e, e <= self.training.epochs)",
             "spec.evaluation.epochs: every epoch must be at most spec.training.epochs", ".evaluation.epochs"),
        PROFILE_IMMUTABLE,
        rule("!has(self.export) || self.export.epoch <= self.training.epochs",
             "spec.export.epoch: at most spec.training.epochs (0: the report's best epoch)", ".export.epoch"),
        rule("self.data.batching.mode != 'bucketed' || !('wo' in self.lora.targetModules)",
             "spec.data.batching.mode: bucketed cannot train LoRA on wo (MindFormers 1.9 fails on a symbolic "
             "sequence length there); use auto (padded for such runs) or padded", ".data.batching.mode"),
    ]
    profile: Literal["ascend", "cpu"] = F("ascend: MindFormers on Huawei Ascend NPUs; cpu: the tiny-llama model on "
                                          "plain CPU nodes (npusPerNode = worker processes).", "ascend")
    model: ModelSpec = F("The base model to fine-tune and where its weights and tokenizer come from.")
    data: Data = F("Training data: where it comes from and how `prepare` turns it into prompts.")
    lora: Lora = block("LoRA: low-rank adapters trained on top of the frozen base model. Trainable parameters per "
                       "adapted matrix are rank x (in + out); the run reports trainable / total as lowParamRatio.",
                       Lora)
    training: Training = block("The fine-tune run: epochs, batch, optimizer, learning rate and checkpoints.",
                               Training)
    resources: Resources = block("Compute: NPUs per node, nodes, and how the model is split across them.",
                                 Resources)
    evaluation: Evaluation = F("SQuAD evaluation of the original capability, for the base model and each candidate "
                               "epoch. Required: every recipe proves the model kept its ability; set enabled: false "
                               "to skip.")
    prediction: Prediction = F("Math (or multiple-choice) accuracy on a held-out set, per problem type. Required; "
                               "set enabled: false to skip.")
    storage: Storage = block("The work volume every stage pod mounts. Changing it after the run starts is "
                             "rejected.", Storage)
    export: Optional[Export] = F("Export the chosen checkpoint in the formats the rest of the ecosystem reads (an "
                                 "export stage after report; left out: no export). docs/export.md.", None)
    images: Images = block("Container images. Changes apply to stages that have not started yet.", Images)
    scheduling: Scheduling = block("Where stage pods run. Changes apply to stages that have not started yet.",
                                   Scheduling)
    pod_templates: Annotated[Optional[List[Dict[str, Any]]], Raw(pod_templates_schema(toleration_schema()))] = None
    run_policy: RunPolicy = block("How stages are run and retried. Changes apply to stages not started yet; suspend "
                                  "applies at once.", RunPolicy)
