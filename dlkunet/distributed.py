"""One process or many: the device, the process group and the collectives training needs.

``torchrun --nproc_per_node N Train_Synapse.py ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in every process it starts; ``setup`` reads them and joins the process group
(NCCL when training on GPUs, gloo on the CPU), one process per device. Started plainly, the
same code runs as a group of one, so the training loop has a single path. Rank 0 alone logs
and writes files; ``barrier`` keeps the others from racing past a save.
"""

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dlkunet.errors import DLKUNetError

# Rank 0 validates and writes checkpoints while the others wait at a barrier; a long validation
# on a full test split must not trip the process group's default timeout.
GROUP_TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Context:
    """Where this process runs and which part of the job it has."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def resolve_device(name):
    """``auto`` -> ``cuda`` when available, else ``cpu``; other names as torch spells them.

    Raises:
        DLKUNetError: for an unknown name or a CUDA device that this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise DLKUNetError(
            f"--device {name!r} is not a device name (expected auto, cpu, cuda, cuda:N)"
        ) from err
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise DLKUNetError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        raise DLKUNetError(f"--device {name}: only cpu and cuda devices are supported")
    return device


def launched_by_torchrun():
    """True when the environment carries a process group's rendezvous (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name="auto"):
    """Join the process group if launched by torchrun and pick this process's device.

    Under torchrun with CUDA each process takes ``cuda:LOCAL_RANK``; on the CPU all share it.

    Returns:
        A ``Context``.
    """
    device = resolve_device(device_name)
    if not launched_by_torchrun():
        return Context(device=device)
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=GROUP_TIMEOUT)
    return Context(device=device, rank=rank, world_size=world_size, local_rank=local_rank)


def cleanup():
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx):
    """Wait for every process; nothing to wait for in a group of one."""
    if ctx.distributed:
        dist.barrier()


def all_reduce(tensor, ctx, op="sum"):
    """Sum (or ``op="min"``) ``tensor`` over all processes, in place; returns it."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MIN)
    return tensor


def wrap_model(model, ctx, multi_gpu=False, warn=print):
    """Wrap ``model`` for data parallelism: DDP under torchrun, DataParallel with ``multi_gpu``.

    Args:
        model: the network, already on ``ctx.device``.
        ctx: this process's ``Context``.
        multi_gpu: the release's ``--multi_gpu`` (DataParallel over all visible GPUs).
        warn: called with a one-line message when ``multi_gpu`` has to be ignored.

    Returns:
        The wrapped model (``dlkunet.checkpoint.unwrap`` gives the bare one back).
    """
    if ctx.distributed:
        if multi_gpu:
            warn("--multi_gpu is ignored under torchrun: each process drives one device with DDP")
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if multi_gpu:
        if ctx.device.type != "cuda":
            warn("--multi_gpu is ignored: DataParallel needs CUDA devices and this run is on the CPU")
        elif torch.cuda.device_count() < 2:
            warn("--multi_gpu is ignored: only one CUDA device is visible")
        else:
            # The model already sits on ctx.device, which must come first in DataParallel's list.
            first = ctx.device.index or 0
            others = [i for i in range(torch.cuda.device_count()) if i != first]
            return torch.nn.DataParallel(model, device_ids=[first, *others])
    return model
