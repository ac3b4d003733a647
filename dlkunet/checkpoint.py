"""Checkpoint I/O: atomic writes, pickle-free loading, and clear errors for the wrong model.

Every load goes through ``torch.load(..., weights_only=True)``: a checkpoint can hold tensors,
numbers, strings and containers of them, never code.

Three kinds of file are accepted wherever weights are read:

- a bare state dict, as the public release and ``model_epoch_{N}_checkpoint.pth`` store it;
- the same with every key prefixed ``module.`` (saved from DataParallel/DDP);
- a training state (``last.pth``), a dict whose ``"model"`` entry is the state dict.
"""

import pickle
import re
from pathlib import Path

import torch

from dlkunet.errors import CheckpointError
from dlkunet.files import atomic_write
from network.dlkunet import strip_wrapper_prefix


def atomic_save(obj, path):
    """``torch.save`` to a temporary file beside ``path``, then rename over it (``dlkunet.files``).

    A crash at any moment leaves either the previous file or the new one, never a half-written
    one.

    Raises:
        CheckpointError: when the folder or the file cannot be written (the previous file stays).
    """
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(obj, f))
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err.strerror or err}") from err


def load_checkpoint(path):
    """Read a checkpoint file onto the CPU without unpickling code.

    Raises:
        CheckpointError: the file is missing, truncated, not a torch file, or holds objects
            that a weights-only load refuses (which could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():
            raise _unreadable(path, err) from err
        found = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line.upper()), "")
        raise CheckpointError(
            f"checkpoint {path} holds objects a weights-only load refuses ({found}); "
            "expected a state dict or a training state of tensors"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        raise _unreadable(path, err) from err


def _unreadable(path, err):
    detail = str(err).splitlines()[0] if str(err) else ""
    return CheckpointError(
        f"checkpoint {path} is not a readable torch file ({type(err).__name__}: {detail[:120]}); "
        "it may be truncated or corrupt"
    )


def strip_wrapper_prefixes(state_dict):
    """Drop ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) key prefixes."""
    return {strip_wrapper_prefix(key): value for key, value in state_dict.items()}


def extract_state_dict(obj, path="checkpoint"):
    """Return the model state dict held by a loaded checkpoint of any accepted kind.

    Raises:
        CheckpointError: when no tensors keyed by parameter name are found.
    """
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(
            f"{path} holds no model state dict (expected parameter names mapped to tensors, "
            f"or a training state with a 'model' entry)"
        )
    return strip_wrapper_prefixes(obj)


def describe_state_dict(state_dict):
    """Say which DLKUNet a state dict belongs to, e.g. ``DLKUNet-M (4 levels), width 96, 9 classes``."""
    try:
        downs = {int(m.group(1)) for k in state_dict if (m := re.match(r"down(\d+)\.", k))}
        levels = max(downs, default=0) + 1
        variant = {3: "DLKUNet-S", 4: "DLKUNet-M", 5: "DLKUNet-L"}.get(levels, "DLKUNet")
        width = state_dict["inc.dwconv1.pointwise.weight"].shape[0]
        classes = state_dict["outc.conv.weight"].shape[0]
        channels = state_dict["inc.dwconv1.depthwise.weight"].shape[0]
    except (KeyError, AttributeError, IndexError):
        return "a network that is not DLKUNet (no inc/down/up/outc layers)"
    return (
        f"{variant} ({levels} levels), base width {width}, {classes} classes, "
        f"{channels} input channel{'s' if channels != 1 else ''}"
    )


def load_weights(model, path, state=None):
    """Load a checkpoint's weights into ``model`` strictly.

    Args:
        model: the DLKUNet to fill (unwrapped, not DataParallel).
        path: the checkpoint file; used for reading unless ``state`` is given, and in messages.
        state: an already loaded checkpoint object, to avoid reading the file twice.

    Returns:
        The loaded checkpoint object (so that a training state's other entries can be used).

    Raises:
        CheckpointError: when the file holds another variant, width, class count or network,
            naming what it holds and what was expected.
    """
    if state is None:
        state = load_checkpoint(path)
    state_dict = extract_state_dict(state, path)
    expected = model.state_dict()
    wrong_shape = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if set(state_dict) != set(expected) or wrong_shape:
        raise CheckpointError(
            f"checkpoint {path} holds {describe_state_dict(state_dict)}; "
            f"expected {describe_state_dict(expected)}"
        )
    model.load_state_dict(state_dict, strict=True)
    return state


def unwrap(model):
    """The bare model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model
