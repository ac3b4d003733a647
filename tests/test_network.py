"""The DLKUNet-S/M/L models: sizes, shapes, gradients, and the public release's weight layout."""

import re
from pathlib import Path

import pytest
import torch

from network import MODELS, DLKUNet, canonical_name, get_model

# A copy of shared/reference/released_dlkunet_m_state_dict.txt: the public release's key names and shapes.
RELEASED_LAYOUT = Path(__file__).parent / "data" / "released_dlkunet_m_state_dict.txt"

PARAMETER_COUNTS = {
    ("S", 9): 1_131_379,
    ("M", 9): 4_494_451,
    ("L", 9): 17_708_659,
    ("S", 4): 1_130_894,
    ("M", 4): 4_493_966,
    ("L", 4): 17_708_174,
}


@pytest.mark.parametrize("name,num_classes", sorted(PARAMETER_COUNTS))
def test_parameter_counts_match_the_paper(name, num_classes):
    model = get_model(name, num_classes=num_classes)
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNTS[name, num_classes]


@pytest.mark.parametrize("name", list(MODELS))
def test_odd_input_gives_full_size_finite_output(name):
    torch.manual_seed(0)
    model = get_model(name, in_channels=1, num_classes=4, base_channels=8).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 37, 53))
    assert out.shape == (2, 4, 37, 53)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, base_channels=8)
    model(torch.randn(2, 1, 33, 40)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_names_and_depths():
    assert [get_model(n, base_channels=8).depth for n in ("S", "DLKUNet-M", "dlkunet_l")] == [3, 4, 5]
    assert canonical_name("DLKUNet-S") == "S"
    with pytest.raises(ValueError, match="valid names: S, M, L"):
        get_model("XL")


def test_channels_last_matches_default_layout():
    torch.manual_seed(0)
    model = get_model("M", base_channels=8).eval()
    x = torch.randn(2, 1, 48, 40)
    with torch.no_grad():
        ref = model(x)
        model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def released_layout():
    """The public release's keys and shapes for DLKUNet-M with 9 classes."""
    layout = {}
    for line in RELEASED_LAYOUT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            layout[name] = tuple(int(s) for s in re.findall(r"\d+", shape))
    return layout


def random_released_state_dict(seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in released_layout().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(shape, generator=gen) * 0.1
    return state


@pytest.mark.parametrize("prefix", ["", "module."])
def test_released_state_dict_loads_strictly_and_computes_its_function(prefix):
    state = random_released_state_dict()
    first, second = get_model("M", num_classes=9).eval(), get_model("M", num_classes=9).eval()
    first.load_state_dict({prefix + k: v for k, v in state.items()}, strict=True)
    second.load_state_dict(state, strict=True)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)
        assert torch.isfinite(first(x)).all()


def test_naming_scheme_extends_to_s_and_l():
    for name, depth in (("S", 3), ("L", 5)):
        keys = get_model(name, base_channels=8).state_dict().keys()
        assert {k.split(".")[0] for k in keys} == (
            {"inc", "outc"} | {f"down{i}" for i in range(1, depth)} | {f"up{i}" for i in range(1, depth)}
        )


def test_depth_must_allow_a_u_shape():
    with pytest.raises(ValueError):
        DLKUNet(depth=1)
