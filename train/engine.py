"""The command line shared by the five train_<name>.py scripts.

A script only names its detector; the registry's `train_defaults` (lr, batch_size, epochs, train_size) become the
argparse defaults of `build_parser(name)`. `parse_args` gives a `TrainConfig` (train/config.py) and `run(name, argv)`
trains it with `train.fit.train`: the data (train/dataset.py), the schedules (train/schedules.py), the loop,
checkpoints (train/checkpoints.py) and the final evaluation (train/final_eval.py).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from detectors.registry import get_spec
from train import augment as aug
from train.checkpoints import load_checkpoint
from train.config import TrainConfig
from train.data import BALANCE_MODES, DataError
from train.fit import TrainResult, train
from train.tracking import DEFAULT_EXPERIMENT


# ---------------------------------------------------------------------------------------------- arguments
def build_parser(name: str) -> argparse.ArgumentParser:
    """The common command line; defaults from get_spec(name).train_defaults where the registry gives them."""
    spec = get_spec(name)
    d = dict(spec.train_defaults)
    p = argparse.ArgumentParser(prog=f"python -m train.train_{name}",
                                description=f"Train the {name} detector ({spec.architecture}).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", default=None,
                   help="crop index (train/prepare.py output: index.csv or its folder), or a raw layout of face "
                        "crops (DIR/{real,fake}, DIR/{train,val,test}/{real,fake}, a manifest CSV); NAME=PATH names "
                        "the source; repeat for several data sets")
    g.add_argument("--val-fraction", type=float, default=0.15, help="validation share where no split is given")
    g.add_argument("--test-fraction", type=float, default=0.15, help="test share where no split is given")
    g.add_argument("--group-regex", default=None, help="regex on file stems whose first group is the group id")
    g.add_argument("--limit", type=int, default=None, help="at most N samples per split (quick runs)")
    g.add_argument("--samples-per-epoch", type=int, default=None,
                   help="training samples drawn per epoch (default: the training set's size)")
    g.add_argument("--source-balance", choices=sorted(BALANCE_MODES), default="sqrt",
                   help="share of each source in an epoch: equal, by sqrt(size) or by size; labels are balanced "
                        "within each source")
    g.add_argument("--source-weight", action="append", default=None, metavar="NAME=W",
                   help="multiply a source's share, e.g. ffhq_stylegan2=2")
    g.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")

    g = p.add_argument_group("model and optimisation")
    g.add_argument("--size", type=int, default=d.get("train_size", spec.input_size),
                   help=f"input size (the registry's default for {name} is {spec.input_size})")
    g.add_argument("--pretrained", action="store_true",
                   help="start from ImageNet weights where the registry has them offline")
    g.add_argument("--epochs", type=int, default=d.get("epochs", 20))
    g.add_argument("--batch-size", type=int, default=d.get("batch_size", 32))
    g.add_argument("--lr", type=float, default=d.get("lr", 3e-4))
    g.add_argument("--weight-decay", type=float, default=d.get("weight_decay", 0.05))
    g.add_argument("--scheduler", choices=("cosine", "plateau"), default=d.get("scheduler", "cosine"))
    g.add_argument("--warmup-epochs", type=float, default=d.get("warmup_epochs", 1.0))
    g.add_argument("--min-lr-ratio", type=float, default=0.01, help="cosine floor as a fraction of --lr")
    g.add_argument("--clip-grad", type=float, default=d.get("clip_grad", 1.0), help="max gradient norm (0: off)")
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--patience", type=int, default=d.get("patience", 5),
                   help="epochs without a better validation AUC before stopping (0: never)")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="mixed precision (CUDA only)")
    g.add_argument("--precise-bn", type=int, default=16, metavar="BATCHES",
                   help="re-estimate BatchNorm statistics on this many training batches before each validation "
                        "(0: keep the running averages, which lag the weights in short runs)")

    g = p.add_argument_group("augmentation and fault injection")
    g.add_argument("--augment", choices=sorted(aug.AUGMENT_LEVELS), default="default")
    g.add_argument("--sbi-fraction", type=float, default=0.0,
                   help="share of real training faces turned into self-blended pseudo-fakes")
    g.add_argument("--label-noise", type=float, default=0.0, help="fault: flip this fraction of training labels")
    g.add_argument("--input-noise", type=float, default=0.0, help="fault: Gaussian noise std (0-255) on inputs")
    g.add_argument("--shuffle-labels", action="store_true", help="fault: permute training labels")

    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help=f"run folder (default runs/{name}/<timestamp>)")
    g.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint (last.pt)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--max-minutes", type=float, default=None, help="stop training cleanly after this long")
    g.add_argument("--eval-batch-size", type=int, default=None)
    g.add_argument("--convert-to", default=None, metavar="DIR",
                   help="convert the best checkpoint into an artifact in DIR (e.g. converted_models)")
    g.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    g.add_argument("--tracking-uri", default=None, help="MLflow URI (default $MLFLOW_TRACKING_URI or "
                                                        "sqlite:///<repo>/mlflow.db)")
    g.add_argument("--run-name", default=None)
    g.add_argument("--no-mlflow", action="store_true")
    g.add_argument("--no-log-checkpoint", action="store_true", help="do not copy best.pt into MLflow")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(name=name)
    return p



def parse_args(name: str, argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse `argv`; with --resume, the checkpoint's arguments are the defaults that `argv` overrides."""
    parser = build_parser(name)
    args = parser.parse_args(argv)
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        if ckpt["name"] != name:
            parser.error(f"{args.resume} is a {ckpt['name']} checkpoint, not {name}")
        saved = dict(ckpt.get("training", {}).get("args", {}))
        known = {a.dest for a in parser._actions}
        appended = ("data", "source_weight")  # append actions would add to a saved default list
        parser.set_defaults(**{k: v for k, v in saved.items()
                               if k in known and k not in ("resume", "out", *appended)})
        args = parser.parse_args(argv)
        for key in appended:
            if getattr(args, key) is None:
                setattr(args, key, saved.get(key))
    if not args.data:
        parser.error("--data is required (a crop index from train/prepare.py, or a folder of face crops)")
    for key in ("sbi_fraction", "label_noise"):
        if not 0 <= getattr(args, key) <= 1:
            parser.error(f"--{key.replace('_', '-')} must be in [0, 1]")
    return TrainConfig.from_namespace(args)



# ---------------------------------------------------------------------------------------------- entry points
def run(name: str, argv: Sequence[str] | None = None) -> TrainResult:
    """Parse `argv` for detector `name` and train."""
    return train(parse_args(name, argv))


def main(name: str, argv: Sequence[str] | None = None) -> int:
    """A train_<name>.py script: exit status 0, or 2 with a one-line error."""
    args = parse_args(name, argv)
    try:
        result = train(args)
    except (DataError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"best checkpoint: {result.best_path}")
    print(f"report: {result.out_dir / 'eval_report.json'}")
    if result.artifact:
        print(f"artifact: {result.artifact}")
    return 0

