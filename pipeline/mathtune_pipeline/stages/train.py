"""train: LoRA fine-tune with MindFormers' Trainer, every rank started by msrun.

Inputs: the tokenize stage's MindRecord shards, the base checkpoint. The
MindFormers config is rendered from the spec (the seeds' own settings),
adapted to the installed MindFormers and, for `profile: cpu`, to CPU.
Training runs in `<run-dir>/train.work/` so a failed attempt leaves its
complete checkpoints for `--resume auto`; when every rank has saved the last
epoch, node 0 publishes `<run-dir>/train/` in one rename: checkpoints,
strategy files, the configs, the worker logs and the parsed loss curve.
While msrun runs, this node's first worker log is followed and each logged
step is printed as a `mathtune-progress` line for the operator.
"""
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from mathtune_api import MathFinetuneSpec as Spec

from .. import disk
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_file, sha256_json, write_manifest
from ..errors import SpecError, StageExit
from ..mindformers import base_model, checkpoints, counts, cpu, dialect, failure, families, launch, records, render
from ..mindformers import model as mf_model
from ..progress import ProgressParser, Step, epoch_loss_fields
from ..result import publish_progress

STAGE = "train"
WORKER = Path(__file__).resolve().parent.parent / "mindformers" / "worker.py"
CHECKPOINT_WAIT_SECONDS = 600
RESULT_EPOCH_LOSSES = 64  # the termination message is 3 KiB


def add_arguments(parser) -> None:
    parser.add_argument("--node-rank", type=int, default=0, help="this node's index (multi-node)")
    parser.add_argument("--master-addr", default=None,
                        help="rank 0's address (host name or IP; resolved here); default this machine")
    parser.add_argument("--master-port", type=int, default=None,
                        help=f"rank 0's port (default {launch.DEFAULT_PORT} across nodes, a free one on one node)")
    parser.add_argument("--resume", choices=("auto", "never"), default="never",
                        help="auto: start from the last epoch every rank saved under the run dir")


def check_batching(spec: Spec, batching: Optional[Dict[str, Any]]) -> None:
    """Bucketed rows are ordered for one global batch per step: training
    with another batch size or data-parallel width would mix the buckets."""
    if not batching or batching.get("mode") != "bucketed":
        return
    wanted = {"batchSize": spec.training.batch_size, "dataParallel": spec.resources.parallel.data_parallel}
    for key, field in (("batchSize", "spec.training.batchSize"),
                       ("dataParallel", "spec.resources.parallel.dataParallel")):
        if batching.get(key) != wanted[key]:
            raise SpecError(field, f"{batching.get(key)}, the value the tokenize stage ordered the bucketed rows "
                                   f"for (got {wanted[key]}; run tokenize again)")


def plan(spec: Spec, run_dir: Path, rows: int, base_checkpoint: Path,
         data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The MindFormers config this run trains with, and the numbers derived on the way. Pure."""
    training = spec.training
    dp = spec.resources.parallel.data_parallel
    steps = records.steps_per_epoch(rows, training.batch_size, dp)
    ckpt = training.checkpoint
    save_steps = steps if ckpt.every_epoch else ckpt.save_steps
    if not ckpt.every_epoch and save_steps < 1:
        raise SpecError("spec.training.checkpoint.saveSteps", "a positive step count when everyEpoch is false")
    work = run_dir / "train.work"
    data = data or {}
    check_batching(spec, data.get("batching"))
    # Sink loops that end on epoch boundaries, so each epoch's save is that
    # epoch's last step and the run trains every step it should.
    sink = checkpoints.aligned_sink_size(steps, training.sink_size) if training.sink_mode else None
    seeds = render.finetune_config(spec, dataset_dir=str(run_dir / "tokenize"), load_checkpoint=str(base_checkpoint),
                                   output_dir=str(work / "output"), save_checkpoint_steps=save_steps,
                                   seq_length=data.get("seqLength"), special_tokens=data.get("tokens"),
                                   sink_size=sink, batching=data.get("batching"))
    config = dialect.adapt(seeds)
    if spec.profile == "cpu":
        config = cpu.cpu_profile(config)
    mc = config["model"]["model_config"]
    return {"seeds_config": seeds, "config": config, "steps_per_epoch": steps, "save_steps": save_steps,
            "cadence": checkpoints.Cadence.of(config, steps),
            "ranks": spec.resources.devices, "work": work,
            "trainable": counts.lora_params(mc, mc["pet_config"]), "total": counts.base_params(mc)}


def _data_digest(data_dir: Path, shards: List[Path]) -> str:
    """What the shards hold: tokenize's own digests when it wrote a manifest (no second pass over them)."""
    manifest = read_manifest(data_dir)
    if manifest and manifest.get("inputDigest") and manifest.get("configDigest"):
        return manifest["inputDigest"] + manifest["configDigest"]
    return sha256_json([sha256_file(s) for s in shards])


def resume_from(config: Dict[str, Any], checkpoint_dir: Path, ranks: int,
                cadence: checkpoints.Cadence) -> Optional[Dict[str, Any]]:
    """Point `config` at the last epoch every rank saved; returns where that
    is, {epoch, checkpoint, step} (None: start afresh). The result carries it,
    so the run's status can say what a restart cost (stepsRedone)."""
    complete = checkpoints.complete_epochs(checkpoint_dir, ranks, cadence)
    if not complete:
        return None
    epoch = max(complete)
    # MindFormers resumes from the named file, with each rank's id put into the name.
    config["load_checkpoint"] = str(checkpoint_dir)
    config["resume_training"] = complete[epoch][0].name
    return {"epoch": epoch, "checkpoint": complete[epoch][0].name,
            "step": checkpoints.saved_step(complete[epoch][0], cadence)}


def check_vocabulary(spec: Spec, config: Dict[str, Any],
                     tokenize_manifest: Optional[Dict[str, Any]]) -> None:
    """The tokenizer tokenize used against the model's embedding table. Pure."""
    tokenizer_vocab = ((tokenize_manifest or {}).get("tokenizer") or {}).get("vocabSize")
    families.check_vocabulary(spec, tokenizer_vocab, int(config["model"]["model_config"]["vocab_size"]))


# Written into train.work at a fresh start: the data and config its
# checkpoints are trained on. A retry resumes only from checkpoints of the
# same recipe; a run re-created under the same name with another recipe
# finds the old run's train.work on the kept claim and must not resume it.
RECIPE = "recipe.sha256"


def identity(spec: Spec, run_dir: Path) -> Dict[str, Any]:
    """What this run trains on: the plan, and the digests of its data and config."""
    shards = records.shards(run_dir / "tokenize")
    base = base_model.ensure(spec, run_dir)
    p = plan(spec, run_dir, records.count_rows(shards), base, records.layout(run_dir / "tokenize"))
    input_digest = sha256_json({"data": _data_digest(run_dir / "tokenize", shards), "base": str(base)})
    config_digest = sha256_json(p["seeds_config"])
    return {"plan": p, "input": input_digest, "config": config_digest,
            "recipe": sha256_json({"input": input_digest, "config": config_digest})}


def same_recipe(work: Path, recipe: str) -> bool:
    path = work / RECIPE
    return path.is_file() and path.read_text(encoding="utf-8").strip() == recipe


def record_recipe(work: Path, recipe: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f".{RECIPE}.{os.getpid()}"
    tmp.write_text(recipe + "\n", encoding="utf-8")
    tmp.replace(work / RECIPE)


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    mf_model.use_output_dir(run_dir / "train.work" / "mindformers")
    ident = identity(spec, run_dir)
    p, input_digest, config_digest = ident["plan"], ident["input"], ident["config"]
    config, work, ranks = p["config"], p["work"], p["ranks"]
    check_vocabulary(spec, config, read_manifest(run_dir / "tokenize"))
    epochs = spec.training.epochs
    if is_current(run_dir / STAGE, input_digest, config_digest):
        print(f"train: {run_dir / STAGE} is current (same data and config): nothing to do", flush=True)
        return _result_from(run_dir / STAGE)

    checkpoint_dir = work / "output" / "checkpoint"
    resumed = None
    if args.resume == "auto":
        if same_recipe(work, ident["recipe"]):
            resumed = resume_from(config, checkpoint_dir, ranks, p["cadence"])
        elif checkpoint_dir.is_dir():
            print(f"train: the checkpoints in {checkpoint_dir} were trained on other data or another config "
                  f"(an earlier run of this name?): not resuming from them, starting afresh", flush=True)
    if resumed is not None:
        print(f"train: resuming after epoch {resumed['epoch']} (step {resumed['step']}, "
              f"{resumed['checkpoint']}) from {checkpoint_dir}", flush=True)
    else:
        # A fresh start: an earlier attempt's files must not pass for this run's epochs.
        local = launch.local_workers(spec.resources.npus_per_node)
        for rank in range(args.node_rank * local, (args.node_rank + 1) * local):
            shutil.rmtree(checkpoint_dir / f"rank_{rank}", ignore_errors=True)
        record_recipe(work, ident["recipe"])
    unfinished = resumed is None or resumed["epoch"] < epochs
    if args.node_rank == 0 and unfinished:
        warn_if_short(spec, p, work)
    parser = ProgressParser()
    if unfinished:
        _train(args, spec, config, work, parser)
    if args.node_rank != 0:
        return {"nodeRank": args.node_rank, "epochs": epochs}
    complete = _wait_for_checkpoints(checkpoint_dir, ranks, epochs, p["cadence"])
    result = _publish(run_dir, work, p, parser.steps, complete, input_digest, config_digest)
    return {**result, "resumedFrom": resumed} if resumed else result


def warn_if_short(spec: Spec, p: Dict[str, Any], work: Path) -> None:
    """Say up front when the saves this run keeps will not fit the work volume
    (a warning: MindFormers deletes saves past keepMax, and a resumed run has
    some already). The exact check is merge's, which knows the files."""
    base = Path(p["config"]["load_checkpoint"])
    if not base.is_file():
        return
    kept = min(spec.training.epochs, spec.training.checkpoint.keep_max)
    dp = spec.resources.parallel.data_parallel
    needed = kept * (dp * base.stat().st_size + p["ranks"] * 3 * 4 * p["trainable"])
    missing = disk.shortfall(work, needed, f"{kept} saved epochs of {p['ranks']} ranks (docs/contract.md: disk)")
    if missing:
        print(f"train: WARNING: the work volume is too small: {missing}; training would fail at a save, "
              f"raise spec.storage.size", flush=True)


def _train(args, spec: Spec, config: Dict[str, Any], work: Path, parser: ProgressParser) -> None:
    nodes, local = spec.resources.nodes, launch.local_workers(spec.resources.npus_per_node)
    if os.environ.get(launch.VISIBLE_DEVICES):
        print(f"train: {local} workers on the NPUs allocated here "
              f"({launch.VISIBLE_DEVICES}={os.environ[launch.VISIBLE_DEVICES]})", flush=True)
    if nodes > 1 and not args.master_addr:
        raise SpecError("--master-addr", "rank 0's address on a multi-node run")
    # Peers are waited for as long as the run allows, in both rendezvous:
    # rank 0's name here, every rank's msrun connection below.
    wait = spec.run_policy.rendezvous_timeout_seconds
    master = launch.resolve_master(args.master_addr, timeout=wait, service=launch.service_of(args.master_addr)) \
        if args.master_addr else launch.LOCALHOST
    port = args.master_port or (launch.DEFAULT_PORT if nodes > 1 else launch.free_port())
    config_path = mf_model.write_config(config, work / f"finetune-node{args.node_rank}.yaml")
    log_dir = work / f"msrun_log-node{args.node_rank}"
    shutil.rmtree(log_dir, ignore_errors=True)
    command = launch.msrun_command(script=str(WORKER), script_args=["--config", str(config_path)],
                                   local_workers=local, nodes=nodes, master_addr=master, master_port=port,
                                   node_rank=args.node_rank, log_dir=str(log_dir), cluster_timeout=wait)
    print("train: " + " ".join(command), flush=True)

    def on_line(line: str) -> None:
        step: Optional[Step] = parser.feed(line)
        if step is not None:
            # Every line carries every complete epoch's loss: the operator reads only the newest line.
            publish_progress(**step.progress_fields(), epochLoss=epoch_loss_fields(parser.steps))

    first_rank = args.node_rank * local
    code = launch.run(command, follow=log_dir / f"worker_{first_rank}.log", on_line=on_line, cwd=str(work))
    last = parser.flush()
    if last is not None:
        publish_progress(**last.progress_fields(), epochLoss=epoch_loss_fields(parser.steps, parser.finished))
    if code != 0:
        tails = {log: launch.tail(log) for log in sorted(log_dir.glob("worker_*.log"))}
        for log, text in tails.items():
            print(f"--- last lines of {log}\n{text}", flush=True)
        raise StageExit("msrun", code, failure.cause(tails.values(), str(work), disk.free_bytes(work)))


def _wait_for_checkpoints(checkpoint_dir: Path, ranks: int, epochs: int,
                          cadence: checkpoints.Cadence) -> Dict[int, Dict[int, Path]]:
    """Every rank's last save: other nodes may still be writing theirs to the shared volume."""
    deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
    while True:
        complete = checkpoints.complete_epochs(checkpoint_dir, ranks, cadence)
        if complete and max(complete) >= epochs:
            return complete
        if time.monotonic() >= deadline:
            found = checkpoints.scan(checkpoint_dir, cadence)
            raise RuntimeError(f"{checkpoint_dir}: no epoch {epochs} checkpoint on all {ranks} ranks "
                               f"(saved: { {e: sorted(r) for e, r in found.items()} })")
        time.sleep(5)


def _publish(run_dir: Path, work: Path, p: Dict[str, Any], steps: List[Step],
             complete: Dict[int, Dict[int, Path]], input_digest: str, config_digest: str) -> Dict[str, Any]:
    output = work / "output"
    curve = [s.__dict__ for s in steps]
    with atomic_stage_dir(run_dir, STAGE) as out:
        shutil.move(str(output / "checkpoint"), str(out / "checkpoint"))
        if (output / "strategy").is_dir():
            shutil.move(str(output / "strategy"), str(out / "strategy"))
        logs = out / "logs"
        logs.mkdir()
        for log in work.glob("msrun_log-node*/*.log"):
            shutil.copy2(log, logs / f"{log.parent.name.split('-')[-1]}-{log.name}")
        mf_model.write_config(p["config"], out / "finetune.yaml")
        mf_model.write_config(p["seeds_config"], out / "finetune.seeds.yaml")
        (out / "loss.json").write_text(json.dumps(curve, indent=1), encoding="utf-8")
        saved = {str(e): {str(r): str(f.relative_to(output)) for r, f in files.items()}
                 for e, files in complete.items()}
        result = {
            "epochs": max(complete),
            "steps": p["steps_per_epoch"] * max(complete),
            "stepsPerEpoch": p["steps_per_epoch"],
            "finalLoss": steps[-1].loss if steps else None,
            "trainableParams": p["trainable"],
            "totalParams": p["total"],
            "ranks": p["ranks"],
            "checkpoints": sorted(complete),
        }
        losses = epoch_loss_fields(steps, finished=True)
        if losses:
            # The epochs this attempt trained (a resumed one starts after its save), the newest first kept.
            result["epochLoss"] = dict(list(losses.items())[-RESULT_EPOCH_LOSSES:])
        write_manifest(out, stage=STAGE, input_digest=input_digest, config_digest=config_digest,
                       outputs={"checkpoints": saved, "config": "finetune.yaml", "loss": "loss.json"},
                       counts={"steps": len(steps), "epochs": max(complete)}, extra={"result": result})
    shutil.rmtree(work, ignore_errors=True)
    return result


def _result_from(stage_dir: Path) -> Dict[str, Any]:
    manifest = json.loads((stage_dir / "manifest.json").read_text(encoding="utf-8"))
    return manifest["result"]
