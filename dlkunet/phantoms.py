"""Synthetic Synapse and ACDC data in every on-disk form the loaders read, and in the raw forms.

Nobody can ship the real data, so the tests, the demo and anyone checking an installation use
phantoms: small volumes of smooth organ-like blobs. Each class has its own intensity and usual
position, sizes and shapes vary from case to case, organs begin and end along the slice axis (so
a class is missing from some slices), and there is noise and a smooth intensity drift. A network
can learn them in minutes, and a pipeline that scrambles images, labels or their alignment
cannot.

``make_phantoms(form, out, ...)`` writes one form:

=====================  =====================================================================
form                   what is written under ``out``
=====================  =====================================================================
synapse-transunet      ``train_npz/``, ``test_vol_h5/``, ``lists_Synapse/{train,test_vol}.txt``
synapse-release        ``data/train/``, ``data/test/``, ``list/{train,test}.txt``
synapse-raw            ``RawData/Training/{img,label}/`` NIfTI, HU int16, 13 raw labels
acdc-mtunet            ``{train,valid,test}/*.npz``, ``lists_ACDC/{train,valid,test}.txt``
acdc-ssl4mis           ``data/*.h5``, ``data/slices/*.h5``, ``*.list``
acdc-raw               ``training/patientNNN/`` frames, ``_gt`` files and ``Info.cfg``
=====================  =====================================================================

Everything is a function of ``seed`` and the case index, so case 3 is the same whether 4 or
40 cases are asked for. The prepared forms are written by ``dlkunet.prepare``, the code that
prepares real data, so ``prepare_synapse.py`` on the synapse-raw phantom reproduces the
synapse-transunet phantom exactly.
"""

import math
from pathlib import Path

import numpy as np

from dlkunet import prepare
from dlkunet.data import write_lines
from dlkunet.errors import DatasetError

FORMS = ("synapse-transunet", "synapse-release", "acdc-mtunet", "acdc-ssl4mis", "synapse-raw", "acdc-raw")
DEFAULTS = {
    "synapse": {"cases": 8, "size": 64, "slices": 12},
    "acdc": {"cases": 10, "size": 64, "slices": 10},
}

# Raw Synapse organs: (raw label, centre (y, x), radii (y, x) as fractions of the slice, intensity
# after the [-125, 275] HU window, slice range (start, end) as fractions of the volume).
# Drawn in this order, so later organs lie over earlier ones. The 8 kept classes have
# intensities about 0.1 apart (noise sigma 0.015, so a small network separates them quickly);
# the structures that become background (esophagus 5, veins 9 and 10, adrenals 12 and 13) are
# small and darker than the body, so they test that background is more than "dark".
SYNAPSE_ORGANS = (
    (6, (0.42, 0.30), (0.21, 0.17), 0.58, (0.05, 0.85)),  # liver
    (7, (0.36, 0.64), (0.12, 0.11), 0.38, (0.05, 0.60)),  # stomach
    (1, (0.47, 0.79), (0.11, 0.08), 0.68, (0.10, 0.60)),  # spleen
    (2, (0.66, 0.29), (0.10, 0.07), 0.87, (0.35, 0.95)),  # right kidney
    (3, (0.66, 0.71), (0.10, 0.07), 0.78, (0.30, 0.90)),  # left kidney
    (11, (0.52, 0.55), (0.06, 0.12), 0.48, (0.40, 0.80)),  # pancreas
    (4, (0.53, 0.36), (0.07, 0.06), 0.28, (0.35, 0.75)),  # gallbladder
    (8, (0.64, 0.50), (0.055, 0.055), 0.96, (0.00, 1.00)),  # aorta
    (5, (0.58, 0.50), (0.025, 0.025), 0.08, (0.00, 0.35)),  # esophagus
    (9, (0.60, 0.41), (0.035, 0.03), 0.10, (0.20, 1.00)),  # inferior vena cava
    (10, (0.45, 0.47), (0.025, 0.03), 0.10, (0.30, 0.60)),  # portal and splenic vein
    (12, (0.57, 0.35), (0.02, 0.02), 0.08, (0.25, 0.55)),  # right adrenal
    (13, (0.57, 0.65), (0.02, 0.02), 0.08, (0.25, 0.55)),  # left adrenal
)
SYNAPSE_BODY = 0.18  # fat and muscle, about -53 HU
NOISE = 0.015


def as_nifti_spacing(spacing):
    """Spacing rounded to float32, as a NIfTI header stores it, so raw and prepared phantoms agree."""
    return tuple(float(np.float32(s)) for s in spacing)


def _grid(h, w):
    return np.mgrid[0:h, 0:w].astype(np.float32)


def blob(grid, centre, radii, angle, wobble):
    """Boolean mask of a rotated ellipse whose edge wobbles smoothly (pixels; ``grid`` from ``_grid``).

    ``wobble`` is ``(a2, p2, a3, p3)``: the edge radius is scaled by
    ``1 + a2 sin(2 phi + p2) + a3 sin(3 phi + p3)``, which makes lobed, organ-like outlines.
    """
    yy, xx = grid
    dy, dx = yy - centre[0], xx - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cos * dx + sin * dy) / max(radii[1], 0.5)
    v = (-sin * dx + cos * dy) / max(radii[0], 0.5)
    phi = np.arctan2(v, u)
    edge = 1 + wobble[0] * np.sin(2 * phi + wobble[1]) + wobble[2] * np.sin(3 * phi + wobble[3])
    return u * u + v * v < edge * edge


def smooth_field(rng, grid, amplitude):
    """A random low-frequency field (two plane waves), for slow intensity drift across a slice."""
    yy, xx = grid
    h, w = yy.shape
    field = np.zeros((h, w), np.float32)
    for _ in range(2):
        fy, fx = rng.uniform(-1.5, 1.5, 2)
        field += np.sin(2 * np.pi * (fy * yy / h + fx * xx / w) + rng.uniform(0, 2 * np.pi)).astype(
            np.float32
        )
    return amplitude * field / 2


# ---------------------------------------------------------------------------------------------
# Synapse


def synapse_case(seed, index, size, slices):
    """One raw Synapse-like CT case.

    Returns:
        ``(hu, label, spacing)``: ``(D, H, W)`` int16 CT numbers (air -1000), ``(D, H, W)``
        uint8 raw labels 0..13, spacing ``(D, H, W)`` in mm.
    """
    rng = np.random.default_rng([seed, 1, index])
    h = w = size
    grid = _grid(h, w)
    organs = []
    for raw, centre, radii, value, (z0, z1) in SYNAPSE_ORGANS:
        scale = rng.uniform(0.8, 1.2)
        shift = rng.uniform(-0.04, 0.04, 2)
        start = np.clip(z0 + rng.uniform(-0.08, 0.08), 0, 0.7)
        end = np.clip(z1 + rng.uniform(-0.08, 0.08), start + 0.3, 1.0)
        organs.append(
            {
                "raw": raw,
                "centre": ((centre[0] + shift[0]) * h, (centre[1] + shift[1]) * w),
                "radii": (radii[0] * h * scale, radii[1] * w * scale),
                "drift": rng.uniform(-0.3, 0.3, 2),
                "angle": rng.uniform(-0.4, 0.4),
                "wobble": (
                    rng.uniform(0, 0.12),
                    rng.uniform(0, 6.3),
                    rng.uniform(0, 0.08),
                    rng.uniform(0, 6.3),
                ),
                "value": value + rng.uniform(-0.012, 0.012),
                "range": (start, end),
            }
        )
    body = {"radii": (0.42 * h * rng.uniform(0.95, 1.05), 0.47 * w * rng.uniform(0.95, 1.05))}
    hu = np.empty((slices, h, w), np.int16)
    label = np.zeros((slices, h, w), np.uint8)
    for d in range(slices):
        hu[d], label[d] = synapse_slice(rng, grid, (d + 0.5) / slices, organs, body)
    xy = round(float(rng.uniform(0.6, 0.95)), 3)
    return hu, label, as_nifti_spacing((rng.choice([2.5, 3.0, 5.0]), xy, xy))


def synapse_slice(rng, grid, z, organs, body):
    """One axial slice at height ``z`` in [0, 1]: ``(int16 HU, uint8 raw labels)``."""
    h, w = grid[0].shape
    value = np.zeros((h, w), np.float32)
    label = np.zeros((h, w), np.uint8)
    inside = blob(grid, (h / 2, w / 2), body["radii"], 0.0, (0.03, 0.0, 0.02, 1.0))
    value[inside] = SYNAPSE_BODY
    for organ in organs:
        start, end = organ["range"]
        if not start <= z <= end:
            continue
        t = 2 * (z - start) / (end - start) - 1  # -1 .. 1 across the organ's extent
        shrink = 0.4 + 0.6 * (1 - t * t) ** 0.5  # organs taper towards their ends, never to a dot
        radii = (organ["radii"][0] * shrink, organ["radii"][1] * shrink)
        centre = (
            organ["centre"][0] + organ["drift"][0] * t * radii[0],
            organ["centre"][1] + organ["drift"][1] * t * radii[1],
        )
        mask = blob(grid, centre, radii, organ["angle"], organ["wobble"]) & inside
        value[mask] = organ["value"]
        label[mask] = organ["raw"]
    value += smooth_field(rng, grid, 0.02) + rng.normal(0, NOISE, (h, w)).astype(np.float32)
    low, high = prepare.HU_WINDOW
    hu = value * (high - low) + low
    hu[~inside] = -1000 + rng.normal(0, 20, int((~inside).sum()))
    return np.round(hu).astype(np.int16), label


def synapse_case_ids(cases):
    """Case ids for ``cases`` phantom cases: about 40% of the standard test ids, the rest train ids.

    Beyond the 30 standard ids, extra ids (``0041`` ...) are made up; they go to training, as any
    case outside both standard lists does.
    """
    if cases < 2:
        raise DatasetError(f"a Synapse phantom needs at least 2 cases (1 train, 1 test), asked for {cases}")
    n_test = min(max(1, round(cases * 12 / 30)), len(prepare.SYNAPSE_TEST_CASES))
    n_train = cases - n_test
    extra = [f"{41 + i:04d}" for i in range(max(0, n_train - len(prepare.SYNAPSE_TRAIN_CASES)))]
    return list(prepare.SYNAPSE_TRAIN_CASES[:n_train]) + extra + list(prepare.SYNAPSE_TEST_CASES[:n_test])


def make_synapse(form, out, cases, size, slices, seed):
    """Write a Synapse phantom in ``form``; see ``make_phantoms``."""
    out = Path(out)
    train, test = [], []
    for index, case_id in enumerate(synapse_case_ids(cases)):
        hu, raw, spacing = synapse_case(seed, index, size, slices)
        if form == "synapse-raw":
            folder = out / "RawData" / "Training"
            prepare.write_nifti(folder / "img" / f"img{case_id}.nii.gz", hu, spacing)
            prepare.write_nifti(folder / "label" / f"label{case_id}.nii.gz", raw, spacing)
            continue
        layout = "transunet" if form == "synapse-transunet" else "release"
        image, label = prepare.window_hu(hu), prepare.remap_synapse_labels(raw, "phantom")
        split, names = prepare.write_synapse_case(
            out, case_id, image, label, spacing if layout == "transunet" else None, layout
        )
        (test if split == "test" else train).extend(names)
    if form == "synapse-raw":
        return {"root": out / "RawData" / "Training", "list_dir": None}
    layout = "transunet" if form == "synapse-transunet" else "release"
    prepare.write_synapse_lists(out, train, test, layout)
    if layout == "transunet":
        return {"root": out, "list_dir": out / "lists_Synapse"}
    return {"root": out / "data", "list_dir": out / "list"}


# ---------------------------------------------------------------------------------------------
# ACDC

ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")


def acdc_patient(seed, index, size, slices):
    """One raw ACDC-like patient: end-diastole and end-systole frames plus ``Info.cfg`` fields.

    Slices are ``size`` x ``size + size // 4`` (not square, as in the real data), ordered from
    the base of the heart to the apex: the right ventricle is missing from the apical slices and
    the left ventricle cavity from the apex itself.

    Returns:
        dict with ``frames`` (``{frame number: (int16 image (D, H, W), uint8 label (D, H, W))}``),
        ``info`` (``Info.cfg`` fields) and ``spacing`` (``(D, H, W)`` mm).
    """
    rng = np.random.default_rng([seed, 2, index])
    h, w = size, size + size // 4
    grid = _grid(h, w)
    heart = {
        "centre": (h * rng.uniform(0.44, 0.56), w * rng.uniform(0.46, 0.58)),
        "radius": 0.14 * h * rng.uniform(0.85, 1.15),
        "angle": rng.uniform(-0.5, 0.5),
        "wobble": (rng.uniform(0, 0.08), rng.uniform(0, 6.3), rng.uniform(0, 0.05), rng.uniform(0, 6.3)),
        "body": (0.40 * h * rng.uniform(0.9, 1.05), 0.45 * w * rng.uniform(0.9, 1.05)),
    }
    gain = rng.uniform(300, 1200)  # MR intensities have no fixed scale
    n_frames = int(rng.integers(20, 36))
    es = int(rng.integers(8, min(16, n_frames)))
    frames = {}
    for frame, phase in ((1, "ED"), (es, "ES")):
        image = np.empty((slices, h, w), np.int16)
        label = np.zeros((slices, h, w), np.uint8)
        for d in range(slices):
            t = d / max(slices - 1, 1)
            value, label[d] = acdc_slice(rng, grid, t, heart, phase)
            image[d] = np.clip(np.round(value * gain), 0, None).astype(np.int16)
        frames[frame] = (image, label)
    info = {
        "ED": 1,
        "ES": es,
        "Group": ACDC_GROUPS[index // 20 % 5],
        "Height": round(float(rng.uniform(150, 195)), 1),
        "NbFrame": n_frames,
        "Weight": round(float(rng.uniform(50, 110)), 1),
    }
    xy = round(float(rng.uniform(1.3, 1.8)), 4)
    return {"frames": frames, "info": info, "spacing": as_nifti_spacing((10.0, xy, xy))}


def acdc_slice(rng, grid, t, heart, phase):
    """One short-axis slice at ``t`` (0 base, 1 apex): ``(float intensities ~[0, 1], uint8 labels)``."""
    h, w = grid[0].shape
    value = np.full((h, w), 0.03, np.float32)
    label = np.zeros((h, w), np.uint8)
    body = blob(grid, (h / 2, w / 2), heart["body"], 0.0, (0.04, 0.5, 0.02, 2.0))
    value[body] = 0.22
    systole = phase == "ES"
    r_lv = heart["radius"] * (1 - 0.55 * t) * (0.72 if systole else 1.0)
    wall = heart["radius"] * 0.42 * (1.3 if systole else 1.0)
    cy, cx = heart["centre"]
    cos, sin = math.cos(heart["angle"]), math.sin(heart["angle"])
    if t < 0.75:  # the right ventricle wraps the septum, left of the LV in the image
        offset = r_lv + wall + heart["radius"] * 0.25
        rv_centre = (cy - sin * offset * 0.5, cx - cos * offset)
        rv_radii = (
            heart["radius"] * 1.25 * (0.75 if systole else 1.0),
            heart["radius"] * (0.8 if systole else 1.0),
        )
        rv = blob(grid, rv_centre, rv_radii, heart["angle"], heart["wobble"])
        value[rv], label[rv] = 0.66, 1
    outer = blob(grid, (cy, cx), (r_lv + wall, r_lv + wall), heart["angle"], heart["wobble"])
    value[outer], label[outer] = 0.44, 2
    if t < 0.99:
        cavity = blob(grid, (cy, cx), (r_lv, r_lv), heart["angle"], heart["wobble"])
        value[cavity], label[cavity] = 0.88, 3
    value += smooth_field(rng, grid, 0.04) + rng.normal(0, 0.025, (h, w)).astype(np.float32)
    return value, label


def write_info(path, info):
    """Write an ACDC ``Info.cfg`` (``key: value`` lines) atomically."""
    write_lines(path, [f"{key}: {value}" for key, value in info.items()])


def make_acdc(form, out, cases, size, slices, seed):
    """Write an ACDC phantom in ``form``; see ``make_phantoms``."""
    out = Path(out)
    fmt = "mtunet" if form == "acdc-mtunet" else "ssl4mis"
    patients = [f"patient{i + 1:03d}" for i in range(cases)]
    split = prepare.acdc_patient_split(patients) if form != "acdc-raw" else {}
    entries = {}
    for index, patient in enumerate(patients):
        data = acdc_patient(seed, index, size, slices)
        for frame, (image, label) in data["frames"].items():
            name = f"{patient}_frame{frame:02d}"
            if form == "acdc-raw":
                prepare.write_nifti(out / "training" / patient / f"{name}.nii.gz", image, data["spacing"])
                prepare.write_nifti(out / "training" / patient / f"{name}_gt.nii.gz", label, data["spacing"])
                continue
            image01 = prepare.normalize_minmax(image)
            frame_entries = prepare.write_acdc_frame(
                out, name, split[patient], image01, label, data["spacing"], fmt
            )
            prepare.merge_entries(entries, frame_entries)
        if form == "acdc-raw":
            write_info(out / "training" / patient / "Info.cfg", data["info"])
    if form == "acdc-raw":
        return {"root": out / "training", "list_dir": None}
    prepare.write_acdc_lists(out, entries, fmt)
    return {"root": out, "list_dir": out / "lists_ACDC" if fmt == "mtunet" else out}


# ---------------------------------------------------------------------------------------------


def make_phantoms(form, out, cases=None, size=None, slices=None, seed=0):
    """Write a phantom dataset in one of ``FORMS`` under ``out``.

    Args:
        form: see the module docstring.
        out: output folder (created).
        cases: number of cases (Synapse; about 40% become test cases) or patients (ACDC, split
            70/10/20); default 8 (Synapse) or 10 (ACDC).
        size: slice height in pixels (ACDC slices are ``size + size // 4`` wide); default 64.
        slices: slices per volume (per frame for ACDC); default 12 (Synapse) or 10 (ACDC).
        seed: everything is a function of the seed and the case index.

    Returns:
        dict with ``root`` (the ``--root_path`` to use, or the ``--raw`` folder for raw forms)
        and ``list_dir`` (the ``--list_dir``; None for raw forms).

    Raises:
        DatasetError: an unknown form or sizes that make no sense.
    """
    if form not in FORMS:
        raise DatasetError(f"unknown phantom form '{form}'; expected one of {', '.join(FORMS)}")
    family = form.split("-")[0]
    cases = DEFAULTS[family]["cases"] if cases is None else cases
    size = DEFAULTS[family]["size"] if size is None else size
    slices = DEFAULTS[family]["slices"] if slices is None else slices
    if size < 16 or slices < 1:
        raise DatasetError(
            f"phantom slices must be at least 16 px and volumes 1 slice, asked for {size} px, {slices}"
        )
    maker = make_synapse if family == "synapse" else make_acdc
    return maker(form, out, cases, size, slices, seed)
