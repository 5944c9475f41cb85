"""merge: each saved epoch's distributed checkpoint -> a complete one -> LoRA merged, adapter apart.

Reads `<run-dir>/train/` (its manifest names every rank's file per epoch),
writes `<run-dir>/merge/epoch_<e>/merged.ckpt` (base weights with
W += B·A·alpha/rank, no LoRA left: what evaluate and predict load) and
`adapter.ckpt` (the LoRA weights only, the small deliverable).
"""
import json
from pathlib import Path
from typing import Any, Dict

from mathtune_api import MathFinetuneSpec as Spec

from .. import disk
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_json, write_manifest
from ..errors import SpecError
from ..mindformers import lora_merge, transform

STAGE = "merge"


def add_arguments(parser) -> None:
    pass


def train_outputs(run_dir: Path) -> Dict[str, Any]:
    manifest = read_manifest(run_dir / "train")
    if not manifest or manifest.get("stage") != "train":
        raise SpecError(str(run_dir / "train"), "a finished train stage (manifest.json missing)")
    return manifest


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    train = train_outputs(run_dir)
    scaling = spec.lora.alpha / spec.lora.rank
    epochs = {int(e): {int(r): run_dir / "train" / f for r, f in ranks.items()}
              for e, ranks in train["outputs"]["checkpoints"].items()}
    input_digest = sha256_json({"train": train["inputDigest"], "trainConfig": train["configDigest"]})
    config_digest = sha256_json({"scaling": scaling})
    if is_current(run_dir / STAGE, input_digest, config_digest):
        return read_manifest(run_dir / STAGE)["result"]
    # Every epoch's merged model and adapter, and with model/pipeline parallelism one reassembled
    # checkpoint at a time: known exactly from the files' headers, so a small volume fails here, not
    # after hours of merging with a half-written file.
    if transform.strategy_files(run_dir / "train" / "strategy"):  # each rank a slice, dataParallel copies of each
        dp = spec.resources.parallel.data_parallel
        outputs = [sum(lora_merge.output_bytes(f) for f in files.values()) // dp for files in epochs.values()]
        transient = max(outputs, default=0)
    else:  # every rank the whole model, read in place
        outputs, transient = [lora_merge.output_bytes(files[min(files)]) for files in epochs.values()], 0
    disk.require_room(run_dir, sum(outputs) + transient, f"the merged checkpoints of {len(outputs)} epochs")
    with atomic_stage_dir(run_dir, STAGE) as out:
        merged_files = {}
        for epoch, rank_files in sorted(epochs.items()):
            edir = out / f"epoch_{epoch}"
            complete = transform.complete_checkpoint(rank_files, run_dir / "train" / "strategy",
                                                     edir / "complete.ckpt")
            try:
                tensors = lora_merge.merge_file(complete, edir / "merged.ckpt", edir / "adapter.ckpt", scaling)
            finally:
                if complete.parent == edir:
                    complete.unlink()  # reassembled from slices: the merged file holds all inference needs
            merged_files[str(epoch)] = {"merged": f"{STAGE}/epoch_{epoch}/merged.ckpt",
                                        "adapter": f"{STAGE}/epoch_{epoch}/adapter.ckpt",
                                        "loraTensors": tensors}
            print(f"merge: epoch {epoch}: {tensors // 2} LoRA pairs folded in (scaling {scaling})", flush=True)
        result = {"epochs": sorted(epochs), "adapter": f"{STAGE}/epoch_{{epoch}}/adapter.ckpt",
                  "merged": f"{STAGE}/epoch_{{epoch}}/merged.ckpt", "scaling": scaling}
        (out / "lora.json").write_text(json.dumps({"lora_rank": spec.lora.rank, "lora_alpha": spec.lora.whole_alpha,
                                                   "target_modules": list(spec.lora.target_modules)}), encoding="utf-8")
        write_manifest(out, stage=STAGE, input_digest=input_digest, config_digest=config_digest,
                       outputs={"epochs": merged_files}, counts={"epochs": len(epochs)}, extra={"result": result})
    return result
