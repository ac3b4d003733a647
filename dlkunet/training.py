"""The training loop that Train_Synapse.py and Train_ACDC.py share.

The released recipe (FACTS.md): Adam, StepLR(step 20, gamma 0.9) stepped once per epoch, CE +
soft Dice (``dlkunet.losses``), batch 12 at 224 px, seed 42, 300 epochs. A script builds its
datasets and calls ``train(args, train_set, val_set, num_classes, class_names)``.

Run folder (``--pth_path``):

- ``model_epoch_{N}_checkpoint.pth``: the bare state dict (no ``module.`` prefix) after epoch N,
  every ``--save_interval`` epochs and after the final epoch; N counts from 1.
- ``last.pth``: the training state after the latest epoch: ``model``, ``optimizer``,
  ``scheduler``, ``scaler`` (AMP), ``epoch`` (epochs done), ``best`` (``{"dice", "epoch"}`` or
  None), ``rng`` (Python, NumPy, torch and CUDA generator states as lists and tensors) and
  ``args``. It is the run's commit point: written last, atomically, after every epoch.
- ``best.pth``: the bare state dict with the best validation mean Dice (``--val_interval``).
- ``args.json``: the parsed arguments of the latest start.

All of them load with ``torch.load(..., weights_only=True)``.

Log lines (console and ``--log_path``, rank 0 only), one per epoch and one per validation, with
stable ``key value`` fields (``epoch`` counts from 1; ``time`` in seconds with an ``s``)::

    epoch 3 loss 0.412345 lr 1.000e-05 time 12.3s ce 0.301234 dice 0.512345 ce_weight 1 dice_weight 1
    val epoch 3 mean_dice 0.812345 mean_hd95 12.345678 best_dice 0.812345 best_epoch 3 time 4.1s

``loss``, ``ce`` and ``dice`` are means over the epoch's steps (and processes); ``lr`` is the
rate the epoch trained with; ``mean_dice``/``mean_hd95`` follow the released test convention
(``dlkunet.metrics``, HD95 in voxels). TensorBoard (``--tensorboard_path``) gets ``Loss/train``
per step, ``Average Loss/train`` and ``Learning Rate`` per epoch, and ``Dice/val`` (also per
class) and ``HD95/val`` per validation.

Resuming is exact by construction: every epoch starts by seeding Python, NumPy and torch from
``(seed, epoch)``, the shuffle order is a function of ``(seed, epoch)`` (DistributedSampler),
and each training item is augmented under RNGs seeded from ``(seed, epoch, index)`` whichever
worker reads it. With the model, optimizer and scheduler restored from ``last.pth`` a run killed
at any moment and continued with ``--continue_train`` ends with the same weights, bit for bit,
as one that was never stopped (CPU, ``--deterministic``; on CUDA some kernels are not
deterministic).
"""

import argparse
import json
import logging
import os
import random
import re
import signal
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from dlkunet import distributed
from dlkunet.checkpoint import atomic_save, describe_state_dict, load_checkpoint, load_weights, unwrap
from dlkunet.errors import CheckpointError, DatasetError, DLKUNetError, TrainingError
from dlkunet.files import write_json
from dlkunet.inference import autocast_context, predict_volume
from dlkunet.logs import setup_logging
from dlkunet.losses import SCHEDULES, SegmentationLoss, describe_weights
from dlkunet.metrics import score_volume, summarize
from network import MODELS, get_model

LR_STEP_SIZE = 20
LR_GAMMA = 0.9
EPOCH_CHECKPOINT = "model_epoch_{}_checkpoint.pth"
EPOCH_CHECKPOINT_PATTERN = re.compile(r"model_epoch_(\d+)_checkpoint\.pth")
# Flags whose change between a run and its continuation is worth a warning.
RESUME_SENSITIVE = ("model", "base_channels", "img_size", "batch_size", "learning_rate", "weight_decay")
RESUME_SENSITIVE += ("loss_weights", "loss_schedule", "seed", "amp")
# Test hook: "E:S" makes the process SIGKILL itself before step S (0-based) of epoch E (1-based),
# so the tests can check that resuming after a hard kill is exact.
KILL_HOOK = "DLKUNET_TEST_SIGKILL_AT"
NO_BAD_STEP = 2**62


# ---------------------------------------------------------------------------------------------
# Command line


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after every flag's help; the script's docstring printed as written."""


def make_arg_parser(description, *, root_path, list_dir, weight_decay, loss_weights, log_path):
    """The flags both Train scripts take, with the dataset-specific defaults given.

    Returns:
        ``(parser, groups)``; ``groups`` maps ``data``, ``model``, ``optimisation``, ``output``
        and ``runtime`` to their argument groups, so a script can add its own flags.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    names = ("data", "model", "optimisation", "output", "runtime")
    groups = {name: parser.add_argument_group(name) for name in names}
    data, model, optim, output, runtime = (groups[name] for name in names)

    data.add_argument("--root_path", default=root_path, help="folder of the prepared dataset")
    data.add_argument("--list_dir", default=list_dir, help="folder of the split list files")
    data.add_argument("--img_size", type=int, default=224, help="size (px) slices are resized to")

    model.add_argument("--model", type=str.upper, choices=list(MODELS), default="M", help="DLKUNet variant")
    model.add_argument("--base_channels", type=int, default=96, help="width of the first level")

    optim.add_argument("--epochs", type=int, default=300, help="epochs to train in total")
    optim.add_argument(
        "--batch_size", type=int, default=12, help="slices per step (per process with torchrun)"
    )
    optim.add_argument("--learning_rate", type=float, default=1e-5, help="Adam's initial learning rate")
    optim.add_argument("--weight_decay", type=float, default=weight_decay, help="Adam's weight decay")
    optim.add_argument(
        "--loss_weights",
        type=float,
        nargs=2,
        metavar=("CE", "DICE"),
        default=list(loss_weights),
        help="weights of cross-entropy and Dice for --loss_schedule fixed",
    )
    optim.add_argument(
        "--loss_schedule",
        choices=SCHEDULES,
        default="fixed",
        help="fixed weights, or the release's sigmoid: CE (1-s), Dice (1+s), s=1/(1+exp(-0.1(epoch-150)))",
    )
    optim.add_argument(
        "--seed", type=int, default=42, help="seed of initialisation, shuffling and augmentation"
    )

    output.add_argument("--log_path", default=log_path, help="log file (appended to)")
    output.add_argument("--pth_path", default="./result/Pth", help="folder of checkpoints and args.json")
    output.add_argument("--tensorboard_path", default="./result/Train", help="TensorBoard folder")
    output.add_argument("--save_interval", type=int, default=10, help="epochs between model_epoch_N files")
    output.add_argument("--val_interval", type=int, default=0, help="epochs between validations (0: none)")
    output.add_argument(
        "--log_interval", type=int, default=10, help="steps between progress/TensorBoard updates"
    )
    output.add_argument("--continue_train", action="store_true", help="resume from --pth_path/last.pth")

    runtime.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    runtime.add_argument("--num_workers", type=int, default=4, help="DataLoader worker processes")
    runtime.add_argument("--amp", action="store_true", help="bf16/fp16 autocast (CUDA only)")
    runtime.add_argument("--multi_gpu", action="store_true", help="DataParallel over all visible GPUs")
    runtime.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower)")
    runtime.add_argument(
        "--no_channels_last",
        action="store_true",
        help="keep the default memory format (channels_last is faster)",
    )
    return parser, groups


def check_args(args):
    """Raise ``DLKUNetError`` naming the first flag whose value cannot work."""
    for name in ("epochs", "batch_size", "img_size", "base_channels", "save_interval", "log_interval"):
        if getattr(args, name) < 1:
            raise DLKUNetError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("val_interval", "num_workers", "weight_decay", "seed"):
        if getattr(args, name) < 0:
            raise DLKUNetError(f"--{name} must be 0 or more, got {getattr(args, name)}")
    if not args.learning_rate > 0:
        raise DLKUNetError(f"--learning_rate must be positive, got {args.learning_rate}")
    if min(args.loss_weights) < 0 or sum(args.loss_weights) == 0:
        raise DLKUNetError(f"--loss_weights must be non-negative and not both 0, got {args.loss_weights}")


# ---------------------------------------------------------------------------------------------
# Reproducibility


def derive_seed(*parts):
    """A 32-bit seed that depends on ``parts`` (non-negative ints) and nothing else."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed):
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_determinism(deterministic):
    """Deterministic kernels with ``--deterministic``; otherwise let cuDNN pick the fastest."""
    if deterministic:
        # cuBLAS reproduces results only with a fixed workspace; it must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: max-pool's CUDA backward has no deterministic kernel; the CPU is fully covered.
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


class EpochIndexSampler(Sampler):
    """Wraps a sampler and yields ``(epoch, index)``, so that each item knows its epoch.

    The pair travels to the DataLoader worker with the index, which a persistent worker's copy of
    the dataset could not learn otherwise.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        return ((self.epoch, index) for index in self.sampler)

    def __len__(self):
        return len(self.sampler)


class SeededDataset(Dataset):
    """Reads ``dataset[index]`` for a key ``(epoch, index)`` with RNGs seeded from ``(seed, epoch, index)``.

    The augmentation of a slice then depends on the run's seed, the epoch and the slice alone:
    not on the worker that reads it, the number of workers or processes, or where a run resumed.
    """

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        seed = derive_seed(self.seed, epoch, index)
        random.seed(seed)
        np.random.seed(seed)
        # The CPU generator only: seeding CUDA's per item would be wasted work in the main process.
        torch.random.default_generator.manual_seed(seed)
        return self.dataset[index]


def rng_state():
    """All global generator states, as tensors, lists and numbers (loadable with weights_only)."""
    version, python_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    cuda_ready = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "python": [version, list(python_state), gauss],
        "numpy": {
            "keys": keys.tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda_ready else [],
    }


def restore_rng_state(state):
    """Undo ``rng_state``; CUDA states are restored when as many devices are visible."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    numpy = state["numpy"]
    keys = np.asarray(numpy["keys"], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def maybe_kill_for_test(epoch, step):
    """The SIGKILL test hook (see ``KILL_HOOK``); ``epoch`` counts from 1, ``step`` from 0."""
    if os.environ.get(KILL_HOOK) == f"{epoch}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Run folder: checkpoints and arguments


def check_writable(folder, flag):
    """Create ``folder`` and write a file there before any time is spent training.

    Raises:
        CheckpointError: naming ``flag`` and the folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CheckpointError(
            f"{flag} {folder} cannot be written ({err.strerror or err}); expected a writable folder"
        ) from err


def check_new_run(folder):
    """Refuse to start a new run over the checkpoints of an earlier one in ``folder``.

    Raises:
        CheckpointError: ``folder`` holds ``last.pth`` or a ``model_epoch_*`` checkpoint.
    """
    folder = Path(folder)
    found = newest_epoch_checkpoint(folder)
    held = "last.pth" if (folder / "last.pth").is_file() else found and found[1].name
    if held:
        raise CheckpointError(
            f"--pth_path {folder} already holds a training run ({held}); pass --continue_train to "
            "resume it, or name another --pth_path to start a new run there"
        )


def bare_state_dict(model):
    """The unwrapped model's state dict on the CPU, in the default memory format."""
    return {key: value.detach().cpu().contiguous() for key, value in unwrap(model).state_dict().items()}


def newest_epoch_checkpoint(folder):
    """``(epoch, path)`` of the ``model_epoch_{N}_checkpoint.pth`` with the largest N, or None."""
    found = []
    for path in Path(folder).glob("model_epoch_*_checkpoint.pth"):
        match = EPOCH_CHECKPOINT_PATTERN.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found, default=None)


def save_epoch(run, epoch):
    """Write this epoch's files (rank 0 only); ``epoch`` is the number of epochs done.

    ``last.pth`` comes last: it is what ``--continue_train`` trusts, so the files it implies
    (``model_epoch_N``, ``best.pth``) exist by the time it names the epoch.
    """
    if run.ctx.is_main:
        folder = Path(run.args.pth_path)
        weights = bare_state_dict(run.model)
        if epoch % run.args.save_interval == 0 or epoch == run.args.epochs:
            atomic_save(weights, folder / EPOCH_CHECKPOINT.format(epoch))
        state = {
            "model": weights,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "epoch": epoch,
            "best": run.best,
            "rng": rng_state(),
            "args": vars(run.args),
        }
        atomic_save(state, folder / "last.pth")
    distributed.barrier(run.ctx)


# ---------------------------------------------------------------------------------------------
# Resume


def resume(run):
    """Restore the run in ``--pth_path``: ``last.pth``, else the newest ``model_epoch_*`` (weights only).

    Sets ``run.best`` and returns the number of epochs done.

    Raises:
        CheckpointError: the checkpoint is unreadable, not a training state, or holds another
            variant, width or class count.
    """
    folder = Path(run.args.pth_path)
    if (folder / "last.pth").is_file():
        return restore_training_state(run, folder / "last.pth")
    found = newest_epoch_checkpoint(folder)
    if found is None:
        run.log.warning(
            f"warning: --continue_train found no last.pth or model_epoch_*_checkpoint.pth in {folder}; "
            "starting at epoch 1"
        )
        return 0
    epoch, path = found
    load_weights(run.model, path)
    advance_scheduler(run.scheduler, epoch)
    run.log.warning(
        f"warning: no last.pth in {folder}; continuing after epoch {epoch} from {path.name}, which holds "
        "weights only: the optimizer state is fresh, so this run will differ from an uninterrupted one"
    )
    return epoch


def restore_training_state(run, path):
    """Load a ``last.pth`` into the model, optimizer, scheduler, AMP scaler and RNGs; the epochs done."""
    state = load_checkpoint(path)
    needed = ("model", "optimizer", "scheduler", "epoch")
    missing = [key for key in needed if key not in state] if isinstance(state, dict) else list(needed)
    if missing:
        raise CheckpointError(
            f"{path} is not a training state: it lacks {', '.join(missing)}; "
            "expected a last.pth written by Train_*.py"
        )
    load_weights(run.model, path, state=state)
    try:
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its optimizer state does not fit this model ({err})") from err
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    if state.get("rng"):
        restore_rng_state(state["rng"])
    warn_changed_flags(run, state.get("args") or {})
    run.best = state.get("best")
    return int(state["epoch"])


def warn_changed_flags(run, saved):
    """Warn about flags that differ from those of the run being continued."""
    changed = [
        f"--{key} {saved[key]} -> {getattr(run.args, key)}"
        for key in RESUME_SENSITIVE
        if key in saved and saved[key] != getattr(run.args, key)
    ]
    if changed:
        run.log.warning(
            f"warning: flags differ from the run being continued ({'; '.join(changed)}); "
            "the learning rate and weight decay come from the checkpoint"
        )


def advance_scheduler(scheduler, epochs):
    """Step the learning-rate schedule ``epochs`` times, as if that many epochs had run."""
    with warnings.catch_warnings():
        # torch warns when a scheduler steps before the optimizer; here no optimizer step is skipped.
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(epochs):
            scheduler.step()


# ---------------------------------------------------------------------------------------------
# One epoch


def make_loader(dataset, args, ctx):
    """Shuffled batches of this process's share of ``dataset``, reproducible per ``(seed, epoch)``.

    One process is a DistributedSampler group of one, so one and many processes shuffle alike.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=args.seed
    )
    return DataLoader(
        SeededDataset(dataset, args.seed),
        batch_size=args.batch_size,
        sampler=EpochIndexSampler(sampler),
        num_workers=args.num_workers,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=args.num_workers > 0,
    )


def memory_format_of(args):
    """channels_last unless ``--no_channels_last``: faster training on the CPU (bench/bench_train.py)."""
    return torch.contiguous_format if args.no_channels_last else torch.channels_last


def train_step(model, images, labels, loss_fn, optimizer, scaler, epoch, amp, memory_format):
    """One optimisation step on a batch; returns ``(loss, ce, dice)`` as a detached device tensor.

    Args:
        images: ``(N, 1, H, W)`` float32 (any device; moved to the model's).
        labels: ``(N, H, W)`` integer class indices.
        epoch: 0-based, for the loss schedule.
    """
    device = next(model.parameters()).device
    images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
    labels = labels.to(device, non_blocking=True).long()
    with autocast_context(device, amp):
        logits = model(images)
    loss, ce, dice = loss_fn(logits, labels, epoch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return torch.stack((loss.detach(), ce, dice))


class StepRecorder:
    """Per-step losses kept on the device, read back every ``--log_interval`` steps.

    Each read-back is the only host-device sync of those steps: it feeds the progress bar and
    TensorBoard's ``Loss/train``, and catches a non-finite loss, naming the step where it began.
    """

    def __init__(self, device, steps, first_global_step, writer, bar):
        self.totals = torch.zeros(3, device=device)
        self.first_bad = torch.full((), NO_BAD_STEP, dtype=torch.long, device=device)
        self.pending = []
        self.steps, self.first_global_step = steps, first_global_step
        self.writer, self.bar = writer, bar

    def add(self, step, terms):
        self.totals += terms
        bad_here = torch.where(torch.isfinite(terms[0]), NO_BAD_STEP, step)
        self.first_bad = torch.minimum(self.first_bad, bad_here)
        self.pending.append((step, terms[0]))

    def flush(self, epoch, lr, ctx):
        """Publish the pending steps; raise ``TrainingError`` if any loss was not finite."""
        first_bad = int(distributed.all_reduce(self.first_bad.clone(), ctx, op="min").item())
        values = torch.stack([loss for _, loss in self.pending]).tolist()
        if first_bad != NO_BAD_STEP:
            value = dict(zip((step for step, _ in self.pending), values)).get(first_bad)
            shown = f" ({value})" if value is not None and not np.isfinite(value) else ""
            raise TrainingError(
                f"the loss is not finite{shown} at epoch {epoch + 1} step {first_bad + 1} of {self.steps}; "
                "training stopped and the checkpoints of earlier epochs are kept "
                "(try a lower --learning_rate, no --amp, or check the data)"
            )
        for (step, _), value in zip(self.pending, values):
            self.writer.add_scalar("Loss/train", value, self.first_global_step + step)
        done = self.pending[-1][0] + 1
        self.bar.set_postfix(loss=f"{self.totals[0].item() / done:.4f}", lr=f"{lr:.3e}", refresh=False)
        self.pending = []

    def means(self, ctx):
        """Means of ``(loss, ce, dice)`` over the epoch's steps in all processes."""
        totals = distributed.all_reduce(self.totals.clone(), ctx)
        return (totals / (self.steps * ctx.world_size)).tolist()


def train_one_epoch(run, epoch):
    """Train for one epoch (0-based ``epoch``); returns the means of ``(loss, ce, dice)``."""
    args, ctx = run.args, run.ctx
    run.model.train()
    steps = len(run.loader)
    lr = run.optimizer.param_groups[0]["lr"]
    layout = memory_format_of(args)
    model, loss_fn, optimizer, scaler = run.model, run.loss_fn, run.optimizer, run.scaler
    # disable=None: the bar shows on a terminal and stays out of redirected output.
    hide = None if ctx.is_main else True
    with tqdm(total=steps, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, disable=hide) as bar:
        recorder = StepRecorder(ctx.device, steps, epoch * steps, run.writer, bar)
        for step, batch in enumerate(run.loader):
            maybe_kill_for_test(epoch + 1, step)
            images, labels = batch["image"], batch["label"]
            terms = train_step(model, images, labels, loss_fn, optimizer, scaler, epoch, args.amp, layout)
            recorder.add(step, terms)
            if (step + 1) % args.log_interval == 0 or step + 1 == steps:
                recorder.flush(epoch, lr, ctx)
            bar.update(1)
    return recorder.means(ctx)


def run_epoch(run, epoch):
    """Train epoch ``epoch`` (0-based), step the schedule, log, validate when due, save."""
    seed_everything(derive_seed(run.args.seed, epoch))
    run.loader.sampler.set_epoch(epoch)
    lr = run.optimizer.param_groups[0]["lr"]
    started = time.perf_counter()
    loss, ce, dice = train_one_epoch(run, epoch)
    run.scheduler.step()
    ce_weight, dice_weight = run.loss_fn.weights_at(epoch)
    done = epoch + 1
    run.log.info(
        f"epoch {done} loss {loss:.6f} lr {lr:.3e} time {time.perf_counter() - started:.1f}s "
        f"ce {ce:.6f} dice {dice:.6f} ce_weight {ce_weight:.4g} dice_weight {dice_weight:.4g}"
    )
    run.writer.add_scalar("Average Loss/train", loss, done)
    run.writer.add_scalar("Learning Rate", lr, done)
    validation_due = run.args.val_interval and (done % run.args.val_interval == 0 or done == run.args.epochs)
    if run.val_set is not None and validation_due and run.ctx.is_main:
        validate_and_keep_best(run, done)
    run.writer.flush()
    save_epoch(run, done)


# ---------------------------------------------------------------------------------------------
# Validation


def validate(model, volumes, num_classes, args, device):
    """Score every validation volume with the released test procedure; ``summarize``'s dict.

    Each volume is predicted slice by slice at ``--img_size`` (``predict_volume``) and scored per
    class 1..K-1 with the release's convention (``dlkunet.metrics``, HD95 in voxels).
    """
    bare = unwrap(model)
    bare.eval()
    scores = []
    for index in range(len(volumes)):
        item = volumes[index]
        prediction = predict_volume(
            bare, item["image"], args.img_size, args.batch_size, device, args.amp, not args.no_channels_last
        )
        scores.append(score_volume(prediction, item["label"], num_classes))
    bare.train()
    return summarize(np.stack(scores))


def validate_and_keep_best(run, epoch):
    """Validate after ``epoch`` epochs, log it, and write ``best.pth`` on a new best mean Dice."""
    started = time.perf_counter()
    summary = validate(run.model, run.val_set, run.num_classes, run.args, run.ctx.device)
    dice = float(summary["mean_dice"])
    if run.best is None or dice > run.best["dice"]:
        run.best = {"dice": dice, "epoch": epoch}
        atomic_save(bare_state_dict(run.model), Path(run.args.pth_path) / "best.pth")
    run.log.info(
        f"val epoch {epoch} mean_dice {dice:.6f} mean_hd95 {summary['mean_hd95']:.6f} "
        f"best_dice {run.best['dice']:.6f} best_epoch {run.best['epoch']} "
        f"time {time.perf_counter() - started:.1f}s"
    )
    run.writer.add_scalar("Dice/val", dice, epoch)
    run.writer.add_scalar("HD95/val", summary["mean_hd95"], epoch)
    for name, (class_dice, _) in zip(run.class_names[1:], summary["class_means"]):
        run.writer.add_scalar(f"Dice/val/{name}", class_dice, epoch)


# ---------------------------------------------------------------------------------------------
# The whole run


@dataclass
class Run:
    """What a training run carries from epoch to epoch."""

    args: argparse.Namespace
    ctx: distributed.Context
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: SegmentationLoss
    log: logging.Logger
    val_set: Dataset = None
    num_classes: int = 9
    class_names: tuple = ()
    loader: DataLoader = None
    writer: object = None
    best: dict = None


class NullWriter:
    """Stands in for TensorBoard's SummaryWriter on ranks that write nothing."""

    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def make_writer(folder, ctx):
    """TensorBoard's writer on rank 0, a ``NullWriter`` elsewhere."""
    if not ctx.is_main:
        return NullWriter()
    from torch.utils.tensorboard import SummaryWriter  # imported late: slow, and only rank 0 needs it

    return SummaryWriter(log_dir=folder)


def check_amp(args, ctx, log):
    """Turn ``--amp`` off with a warning where it cannot run (the CPU)."""
    if args.amp and ctx.device.type != "cuda":
        log.warning("warning: --amp is ignored: autocast is used on CUDA only, and this run is on the CPU")
        args.amp = False


def train(args, train_set, val_set, num_classes, class_names):
    """Train DLKUNet on ``train_set`` as ``args`` say; see the module docstring for what is written.

    Args:
        args: the namespace of ``make_arg_parser``'s flags.
        train_set: slice items with ``image`` ``(1, H, W)`` float32 and ``label`` ``(H, W)`` int64
            tensors (the datasets' ``RandomGenerator`` transform).
        val_set: volume items ``image`` ``(D, H, W)`` float and ``label`` ``(D, H, W)`` int, or
            None; scored every ``--val_interval`` epochs when given.
        num_classes: K, background included; ``class_names``: K names for TensorBoard.

    Returns:
        The best validation result ``{"dice", "epoch"}``, or None without validation.

    Raises:
        DLKUNetError (and subclasses): bad flags, data, output folders or checkpoints, and a
            non-finite loss (``TrainingError``); the scripts turn them into one line.
    """
    check_args(args)
    configure_determinism(args.deterministic)
    ctx = distributed.setup(args.device)
    try:
        return run_training(args, ctx, train_set, val_set, num_classes, class_names)
    finally:
        distributed.cleanup()


def run_training(args, ctx, train_set, val_set, num_classes, class_names):
    """The body of ``train`` once the process (group) is set up."""
    for folder, flag in ((args.pth_path, "--pth_path"), (args.tensorboard_path, "--tensorboard_path")):
        check_writable(folder, flag)
    check_writable(Path(args.log_path).parent, "the folder of --log_path")
    if not args.continue_train:
        check_new_run(args.pth_path)
    log = setup_logging(args.log_path, "dlkunet", enabled=ctx.is_main)
    if len(train_set) == 0:
        raise DatasetError(f"the training split under {args.root_path} holds no slices")
    check_amp(args, ctx, log)
    seed_everything(args.seed)

    model = get_model(args.model, 1, num_classes, args.base_channels)
    model = model.to(ctx.device, memory_format=memory_format_of(args))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    fp16 = args.amp and not torch.cuda.is_bf16_supported()  # bf16 needs no loss scaling
    run = Run(
        args,
        ctx,
        model,
        optimizer,
        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=LR_STEP_SIZE, gamma=LR_GAMMA),
        scaler=torch.amp.GradScaler("cuda", enabled=fp16),
        loss_fn=SegmentationLoss(args.loss_schedule, args.loss_weights),
        log=log,
        val_set=val_set,
        num_classes=num_classes,
        class_names=tuple(class_names),
    )
    start = resume(run) if args.continue_train else 0
    run.model = distributed.wrap_model(
        model, ctx, args.multi_gpu, warn=lambda text: log.warning(f"warning: {text}")
    )
    run.loader = make_loader(train_set, args, ctx)
    if ctx.is_main:
        write_json(Path(args.pth_path) / "args.json", vars(args), indent=2, sort_keys=True)
    log_header(run, train_set, start)
    if start >= args.epochs:
        log.info(f"nothing to train: {start} epochs done, --epochs {args.epochs}")
        return run.best

    run.writer = make_writer(args.tensorboard_path, ctx)
    try:
        for epoch in range(start, args.epochs):
            run_epoch(run, epoch)
    except TrainingError as err:
        log.error(f"error: {err}")
        raise
    finally:
        run.writer.close()
    best = f", best mean_dice {run.best['dice']:.6f} at epoch {run.best['epoch']}" if run.best else ""
    log.info(f"training finished: {args.epochs} epochs{best}; checkpoints in {args.pth_path}")
    return run.best


def log_header(run, train_set, start):
    """What the run is about to do, in a few lines, and the arguments as JSON."""
    args, ctx = run.args, run.ctx
    bare = unwrap(run.model)
    parameters = sum(p.numel() for p in bare.parameters())
    run.log.info(f"model {describe_state_dict(bare.state_dict())}, {parameters:,} parameters")
    run.log.info(
        f"data {len(train_set)} training slices from {args.root_path}, batch {args.batch_size} x "
        f"{ctx.world_size} process(es), {len(run.loader)} steps per epoch; validation "
        + (
            f"{len(run.val_set)} volumes every {args.val_interval} epochs"
            if run.val_set is not None
            else "off"
        )
    )
    amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if args.amp else "off"
    layout = "contiguous" if args.no_channels_last else "channels_last"
    run.log.info(
        f"loss {describe_weights(args.loss_schedule, args.loss_weights)}; device {ctx.device}, amp {amp}, "
        f"{layout}, {args.num_workers} workers; starting at epoch {start + 1} of {args.epochs}"
    )
    run.log.info(f"arguments {json.dumps(vars(args), sort_keys=True)}")
