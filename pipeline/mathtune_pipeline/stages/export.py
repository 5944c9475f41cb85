"""export: the chosen checkpoint as a PEFT adapter and a Hugging Face model, with a model card.

Runs when the spec has an `export` block. Which checkpoint: `export.epoch`,
else the report's best epoch; a run whose gate failed is exported only with
`export.whenGateFails: true` (else the stage succeeds with `skipped`).
Writes `<run-dir>/export/peft/` (adapter_config.json, adapter_model.
safetensors, README.md) and `<run-dir>/export/hf/` (config.json,
generation_config.json, model*.safetensors [+ index], tokenizer files,
README.md), each with a SHA256SUMS, then copies them to
`export.destination` when one is given. Every tensor is copied from the
merge stage's MindSpore checkpoints a piece at a time (export/
safetensors_out.py). A family without a Hugging Face name map, or a
destination that cannot be written, fails the stage naming the field; the
merge stage's checkpoints are never touched, and a local export already made
is kept.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

from mathtune_api import MathFinetuneSpec as Spec
from mathtune_api.spec_scoring import Export

from .. import disk
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_json, write_manifest
from ..data.sources import fetch, shown
from ..errors import SpecError
from ..export import card, deliver, hf_config, names, peft_adapter, safetensors_out

STAGE = "export"
FORMATS = ("peft", "hf")
_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}


def add_arguments(parser) -> None:
    pass


def shard_bytes(text: str) -> int:
    """Hugging Face's max_shard_size spelling: "5GB", "500MB", "2GiB"."""
    raw = str(text).strip().upper()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit) and raw[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(raw[: -len(unit)]) * _UNITS[unit])
    raise SpecError("spec.export.maxShardSize", f"a size such as 5GB or 500MB (got {text!r})")


def _stage_manifest(run_dir: Path, stage: str) -> Dict[str, Any]:
    manifest = read_manifest(run_dir / stage)
    if not manifest:
        raise SpecError(str(run_dir / stage), f"a finished {stage} stage")
    return manifest


def choose_epoch(export: Export, report: Mapping[str, Any], merged: Mapping[str, Any]) -> int:
    """The epoch to export; a SpecError naming spec.export.epoch for one merge did not keep."""
    epoch = export.epoch or report.get("bestEpoch")
    if epoch is None or str(epoch) not in merged:
        raise SpecError("spec.export.epoch", f"an epoch the merge stage kept ({', '.join(sorted(merged, key=int))}; "
                                             f"got {epoch})")
    return int(epoch)


def _sums(files: List[safetensors_out.Written], root: Path) -> safetensors_out.Written:
    """SHA256SUMS of a format's files (sha256sum -c reads it): its own digest names the whole export."""
    path = root / "SHA256SUMS"
    path.write_text("".join(f"{w.sha256}  {w.path.relative_to(root).as_posix()}\n"
                            for w in sorted(files, key=lambda w: str(w.path))), encoding="utf-8")
    return safetensors_out.Written.of(path)


def export_peft(out: Path, adapter: Path, spec: Spec, base_model: str, card_text: str):
    files = peft_adapter.write(adapter, out, spec.model.family, spec.lora, base_model)
    readme = out / "README.md"
    readme.write_text(card_text, encoding="utf-8")
    return files + [safetensors_out.Written.of(readme)]


def export_hf(out: Path, merged: Path, spec: Spec, tokenizer: Path, max_shard: int, card_text: str):
    family = spec.model.family
    entries = safetensors_out.entries(merged, lambda n: names.hf_name(family, n))
    dtype = next((e.dtype for e in entries if e.name == "model.embed_tokens.weight"), "Float32")
    config = hf_config.model_config(spec, hf_config.shapes_of(entries), dtype)
    out.mkdir(parents=True, exist_ok=True)
    made = [hf_config.write_json(out / "config.json", config),
            hf_config.write_json(out / "generation_config.json", hf_config.generation_config(config, spec)),
            *hf_config.tokenizer_files(spec, tokenizer, config, out)]
    files = [safetensors_out.Written.of(p) for p in made]
    files += safetensors_out.write_sharded(entries, out, max_shard, {"format": "pt"})
    readme = out / "README.md"
    readme.write_text(card_text, encoding="utf-8")
    return files + [safetensors_out.Written.of(readme)]


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    export = spec.export  # optional block: no export asked, nothing to do
    if export is None:
        return {"skipped": True, "reason": "spec.export is not set"}
    formats = list(export.formats)
    family = spec.model.family
    names.target_modules(family, list(spec.lora.target_modules))  # refuses a family without a map first
    report = _stage_manifest(run_dir, "report").get("result") or {}
    merge = _stage_manifest(run_dir, "merge")
    merged_epochs = merge["outputs"]["epochs"]
    if not report.get("gatePassed") and not export.when_gate_fails:
        return {"skipped": True, "reason": "no epoch passed the original-ability gate; set "
                                           "spec.export.whenGateFails: true to export the best epoch anyway"}
    epoch = choose_epoch(export, report, merged_epochs)
    files = merged_epochs[str(epoch)]
    adapter, merged = run_dir / files["adapter"], run_dir / files["merged"]
    base_model = export.base_model or shown(spec.model.checkpoint)  # no token of a signed URL
    max_shard = shard_bytes(export.max_shard_size)
    input_digest = sha256_json({"merge": merge["inputDigest"], "epoch": epoch, "report": report})
    config_digest = sha256_json({"export": export.wire(), "lora": spec.lora.wire(), "family": family,
                                 "tokenizer": spec.model.tokenizer.wire()})
    destination = export.destination
    done = read_manifest(run_dir / STAGE) or {}
    if is_current(run_dir / STAGE, input_digest, config_digest) and done.get("delivered", not destination):
        return done["result"]
    tokenizer = fetch(spec.model.tokenizer.uri, spec.storage.data_path, run_dir / "downloads",
                      field="spec.model.tokenizer.uri") if "hf" in formats else Path()
    need = sum(p.stat().st_size for p, fmt in ((adapter, "peft"), (merged, "hf")) if fmt in formats)
    disk.require_room(run_dir, need, f"the {' and '.join(formats)} export of epoch {epoch}")
    prepare = read_manifest(run_dir / "prepare") or {}
    artifacts: List[Dict[str, Any]] = []
    written: Dict[str, List[Path]] = {}
    with atomic_stage_dir(run_dir, STAGE) as out:
        for fmt in formats:
            text = card.render(run=metadata.get("name", run_dir.name), fmt=fmt, base_model=base_model, spec=spec,
                               report=report, prepare=prepare, epoch=epoch)
            made = (export_peft(out / fmt, adapter, spec, base_model, text) if fmt == "peft" else
                    export_hf(out / fmt, merged, spec, tokenizer, max_shard, text))
            sums = _sums(made, out / fmt)
            written[fmt] = [w.path.relative_to(out) for w in made + [sums]]
            artifacts.append({"format": fmt, "location": f"{STAGE}/{fmt}", "bytes": sum(w.bytes for w in made),
                              "files": len(made), "sha256": sums.sha256})
            print(f"export: {fmt}: {len(made)} files, {artifacts[-1]['bytes']} bytes in {STAGE}/{fmt}", flush=True)
        result = {"epoch": epoch, "formats": formats, "artifacts": artifacts, "baseModel": base_model}
        write_manifest(out, stage=STAGE, input_digest=input_digest, config_digest=config_digest,
                       outputs={a["format"]: a["location"] for a in artifacts}, counts={"formats": len(formats)},
                       extra={"result": result, "delivered": not destination})
    if destination:
        # After the local export landed: a destination that refuses it fails the stage, the export stays.
        for artifact in artifacts:
            root = run_dir / artifact["location"]
            artifact["destination"] = deliver.deliver([run_dir / STAGE / p for p in written[artifact["format"]]],
                                                      root, destination, spec.storage.data_path,
                                                      artifact["format"])
        manifest = read_manifest(run_dir / STAGE) or {}
        manifest.update({"result": result, "delivered": True})
        (run_dir / STAGE / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return result
