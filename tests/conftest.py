"""Phantom datasets shared by every test module (made once per test session, tiny on purpose).

``synapse_phantom``: TransUNet's layout, 4 training cases and 2 test cases of 8 slices at 48 px.
``acdc_phantom``: MT-UNet's form, 10 patients (7 train, 1 valid, 2 test), 6 slices of 48 x 60 px.
Both give a ``Phantom`` with ``root`` and ``list_dir`` (the ``--root_path`` and ``--list_dir``
to pass), ``num_classes`` and ``size``. Treat them as read-only; a test that changes files makes
its own copy or its own phantom in ``tmp_path``.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlkunet.phantoms import make_phantoms  # noqa: E402


@dataclass(frozen=True)
class Phantom:
    root: Path
    list_dir: Path
    num_classes: int
    size: int


@pytest.fixture(scope="session")
def synapse_phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("synapse_phantom")
    made = make_phantoms("synapse-transunet", out, cases=6, size=48, slices=8, seed=0)
    return Phantom(made["root"], made["list_dir"], num_classes=9, size=48)


@pytest.fixture(scope="session")
def acdc_phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("acdc_phantom")
    made = make_phantoms("acdc-mtunet", out, cases=10, size=48, slices=6, seed=0)
    return Phantom(made["root"], made["list_dir"], num_classes=4, size=48)
