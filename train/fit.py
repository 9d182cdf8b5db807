"""The fit loop: AdamW, warm-up then cosine (or plateau) schedule, AMP on CUDA, gradient clipping, precise
BatchNorm, early stopping on validation AUC, `last.pt` and `best.pt` every epoch, resumable and time-limited;
then the final evaluation, MLflow logging and the optional conversion into an artifact."""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from analysis.report import json_safe
from detectors.registry import build_model, get_spec
from train import augment as aug
from train.calibration import apply_temperature
from train.checkpoints import CHECKPOINT_VERSION, cpu_state, load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.convert import convert
from train.data import parse_source_weights, sample_weights
from train.dataset import CropDataset, load_data
from train.final_eval import final_evaluation, fmt
from train.metrics import compute_metrics
from train.passes import predict_logits, recalibrate_batchnorm
from train.runtime import resolve_device, seed_everything, setup_logging
from train.schedules import Schedule
from train.tracking import Tracker

log = logging.getLogger("train")

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TrainResult:
    out_dir: Path
    best_path: Path
    last_path: Path
    best_auc: float
    best_epoch: int
    epochs_run: int
    temperature: float
    stopped: str                     # "completed" | "early_stopping" | "time_limit"
    run_id: str | None
    report: dict = field(default_factory=dict)
    artifact: Path | None = None


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "token" in name
         else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(args: TrainConfig) -> TrainResult:
    """One training run; see the module docstring and TrainConfig."""
    name = args.name
    spec = get_spec(name)
    started = time.time()
    deadline = started + args.max_minutes * 60 if args.max_minutes else None
    resume = load_checkpoint(args.resume) if args.resume else None
    if args.out:
        out_dir = Path(args.out)
    elif resume is not None:
        out_dir = Path(args.resume).resolve().parent
    else:
        out_dir = REPO_ROOT / "runs" / name / datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(out_dir)
    tracker: Tracker | None = None
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        # a resumed run continues with fresh draws rather than replaying epoch 1's samples and augmentations
        epochs_done = int(resume["epoch"]) + 1 if resume else 0
        seed_everything(args.seed + epochs_done)
        device = resolve_device(args.device)
        amp = device.type == "cuda" and args.amp != "off"
        data = load_data(args)
        log.info("%s: train %d, val %d, test %d samples; device %s%s", name, len(data.train), len(data.val),
                 len(data.test), device, " (AMP)" if amp else "")

        size = int(resume["input_size"]) if resume else int(args.size)
        try:
            model = build_model(name, pretrained=bool(args.pretrained and resume is None), input_size=size)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot build {name}: {str(exc).splitlines()[0]}") from None
        model_kwargs = dict(getattr(model, "detector_kwargs", {}))
        if resume:
            model.load_state_dict(resume["model"])
        model.to(device)

        augmenter = aug.build_augmenter(args.augment)
        sbi = aug.SelfBlend() if args.sbi_fraction > 0 else None
        train_set = CropDataset(data.train, size, spec.mean, spec.std, labels=data.train_labels,
                                augmenter=augmenter, sbi=sbi, sbi_fraction=args.sbi_fraction,
                                input_noise=args.input_noise)
        weights = sample_weights(data.train, parse_source_weights(args.source_weight), args.source_balance)
        per_epoch = int(args.samples_per_epoch or len(data.train))
        generator = torch.Generator().manual_seed(args.seed + epochs_done)
        sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), per_epoch, replacement=True,
                                        generator=generator)
        loader_kw = dict(num_workers=args.num_workers, pin_memory=device.type == "cuda",
                         persistent_workers=args.num_workers > 0)
        train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler,
                                  drop_last=per_epoch > args.batch_size, **loader_kw)
        eval_bs = args.eval_batch_size or args.batch_size * 2
        val_loader = DataLoader(CropDataset(data.val, size, spec.mean, spec.std), batch_size=eval_bs, **loader_kw)

        optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr)
        schedule = Schedule(optimizer, args.scheduler, len(train_loader), args.epochs, args.warmup_epochs,
                            args.min_lr_ratio)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        loss_fn = nn.BCEWithLogitsLoss()

        start_epoch, best_auc, best_epoch, bad_epochs, history = 0, -math.inf, -1, 0, []
        run_id = None
        if resume:
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["scheduler"])
            if resume.get("scaler"):
                scaler.load_state_dict(resume["scaler"])
            start_epoch = int(resume["epoch"]) + 1
            best_auc = float(resume["best_auc"]) if resume.get("best_auc") is not None else -math.inf
            best_epoch, bad_epochs = int(resume.get("best_epoch", -1)), int(resume.get("bad_epochs", 0))
            history = list(resume.get("history", []))
            run_id = resume.get("run_id") or None
            if args.scheduler == "cosine" and isinstance(schedule.inner, torch.optim.lr_scheduler.LambdaLR):
                plan = schedule.inner.lr_lambdas[0]
                total = len(train_loader) * args.epochs
                if plan.total_steps != total:  # --epochs changed: stretch the cosine over the new length
                    log.info("cosine schedule re-planned from %d to %d steps", plan.total_steps, total)
                    plan.total_steps = total
            log.info("resumed from %s after epoch %d (best AUC %.4f at epoch %d)", args.resume, start_epoch,
                     best_auc, best_epoch + 1)

        tracker = Tracker(enabled=not args.no_mlflow, tracking_uri=args.tracking_uri, experiment=args.experiment)
        run_id = tracker.start(run_name=args.run_name or f"{name}-{out_dir.name}",
                               tags={"detector": name, "architecture": spec.architecture,
                                     "out_dir": str(out_dir)}, run_id=run_id) or run_id
        training_info = {"data": data.summary, "args": args.plain(), "model_kwargs": model_kwargs,
                         "input_size": size, "architecture": spec.architecture, "device": str(device),
                         "samples_per_epoch": per_epoch, "torch": str(torch.__version__)}
        if resume is None:
            tracker.log_params({**{k: v for k, v in args.plain().items() if v is not None},
                                "input_size": size, "n_train": len(data.train), "n_val": len(data.val),
                                "n_test": len(data.test)})
            tracker.log_dict(data.summary, "data_summary.json")
        (out_dir / "data_summary.json").write_text(json.dumps(json_safe(data.summary), indent=2))
        (out_dir / "args.json").write_text(json.dumps(args.plain(), indent=2))

        def checkpoint(epoch: int, metrics: dict) -> dict:
            return {"version": CHECKPOINT_VERSION, "model": cpu_state(model), "name": name, "input_size": size,
                    "model_kwargs": model_kwargs, "epoch": epoch, "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(), "scaler": scaler.state_dict(),
                    "best_auc": best_auc if math.isfinite(best_auc) else None, "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs, "temperature": 1.0, "metrics": json_safe(metrics),
                    "training": training_info, "run_id": run_id or "", "history": json_safe(history)}

        last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
        stopped = "completed"
        epoch = start_epoch - 1
        for epoch in range(start_epoch, args.epochs):
            model.train()
            losses, seen, t0 = 0.0, 0, time.time()
            bar = tqdm(train_loader, desc=f"{name} epoch {epoch + 1}/{args.epochs}", leave=False,
                       disable=args.no_progress, dynamic_ncols=True)
            timed_out = False
            for x, y, _ in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if args.label_smoothing:
                    y = y * (1 - args.label_smoothing) + 0.5 * args.label_smoothing
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    z = model(x).reshape(-1)
                loss = loss_fn(z.float(), y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower --lr")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if args.clip_grad:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                schedule.step_batch()
                losses += float(loss.detach()) * len(x)
                seen += len(x)
                bar.set_postfix(loss=f"{losses / seen:.4f}", lr=f"{schedule.lr:.2e}")
                if deadline and time.time() > deadline:
                    timed_out = True
                    break
            bar.close()
            recalibrate_batchnorm(model, train_loader, device, args.precise_bn, amp)
            val_logits = predict_logits(model, val_loader, device, amp, not args.no_progress, "validation")
            val = compute_metrics([s.label for s in data.val], apply_temperature(val_logits, 1.0))
            score = val["auc"] if val["auc"] == val["auc"] else -val["log_loss"]
            schedule.step_epoch(score)
            row = {"epoch": epoch + 1, "train_loss": losses / max(seen, 1), "val_auc": val["auc"],
                   "val_loss": val["log_loss"], "val_accuracy": val["accuracy"], "val_ece": val["ece"],
                   "lr": schedule.lr, "seconds": round(time.time() - t0, 1), "samples": seen}
            history.append(row)
            improved = score > best_auc + 1e-6
            if improved:
                best_auc, best_epoch, bad_epochs = score, epoch, 0
            else:
                bad_epochs += 1
            state = checkpoint(epoch, {"val": val})
            save_checkpoint(last_path, state)
            if improved:
                save_checkpoint(best_path, state)
            tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            log.info("epoch %d: train loss %.4f, val AUC %.4f, val loss %.4f, lr %.2e, %.0fs%s", epoch + 1,
                     row["train_loss"], val["auc"], val["log_loss"], row["lr"], row["seconds"],
                     " (best)" if improved else "")
            if timed_out:
                stopped = "time_limit"
                log.info("time limit of %s minutes reached: stopping (best epoch %d kept)", args.max_minutes,
                         best_epoch + 1)
                break
            if args.patience and bad_epochs >= args.patience:
                stopped = "early_stopping"
                log.info("no better validation AUC for %d epochs: stopping", bad_epochs)
                break
        (out_dir / "history.json").write_text(json.dumps(json_safe(history), indent=2))
        if not best_path.is_file():
            raise RuntimeError("no epoch finished: nothing to evaluate (raise --max-minutes or --epochs)")

        report = final_evaluation(best_path, data, device, amp, out_dir, args, tracker)
        result = TrainResult(out_dir=out_dir, best_path=best_path, last_path=last_path,
                             best_auc=float(best_auc), best_epoch=best_epoch + 1, epochs_run=epoch + 1,
                             temperature=report["temperature"], stopped=stopped, run_id=run_id, report=report)
        tracker.set_tags({"stopped": stopped, "best_epoch": best_epoch + 1})
        if args.convert_to:
            result.artifact = convert(best_path, args.convert_to, tracking_uri=tracker.uri if tracker.enabled
                                      else None, experiment=args.experiment, log_to_mlflow=tracker.enabled)
        if tracker.enabled and not args.no_log_checkpoint:
            tracker.log_artifact(best_path, "checkpoint")
        tracker.end("FINISHED")
        tracker = None
        log.info("done in %.1f min: best val AUC %.4f (epoch %d), T=%.3f, test AUC %s; %s", (time.time() - started) / 60,
                 best_auc, best_epoch + 1, report["temperature"],
                 fmt(report.get("test", {}).get("calibrated", {}).get("auc")), out_dir)
        return result
    except BaseException as exc:
        if tracker is not None:
            tracker.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
