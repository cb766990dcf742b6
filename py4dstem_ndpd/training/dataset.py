"""Build the training dataset: domain-randomised patterns for training, and validation on held-out families.

Validation holds out whole families of conditions: besides randomised patterns from another seed, it contains
patterns of the two sample presets (Si [110] and Ti-Nb, a different generator: real crystal nets, position-
dependent intensities, descan) at doses and disk sizes drawn at random. None of them are used for training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """How many patterns of each kind, and the seed.

    Attributes
    ----------
    n_train : int
        Randomised training patterns.
    n_val_random : int
        Randomised validation patterns (another seed).
    n_val_presets : int
        Held-out validation patterns from the sample presets.
    size : int
        Image size, px (square).
    seed : int
    randomization : {"v1", "v2", "v3", "v4"}
        Which domain randomisation (:data:`py4dstem_ndpd.synth.randomized.RANDOMIZATIONS`): ``"v2"`` adds
        dynamical disk contrast, Kikuchi bands and integrating cameras to ``"v1"``; ``"v3"`` mixes the two and
        adds speckled diffuse scattering and more overlapping lattices; ``"v4"`` adds scintillator cameras (the
        point-spread function blurs the shot noise, often with a long tail) to ``"v3"``.
    """

    n_train: int = 2400
    n_val_random: int = 150
    n_val_presets: int = 96
    size: int = 256
    seed: int = 0
    randomization: str = "v3"

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_val_random < 0 or self.n_val_presets < 0:
            raise ConfigError(
                f"DatasetSpec: n_train must be >= 1 and the validation counts >= 0, got {self.n_train}, "
                f"{self.n_val_random}, {self.n_val_presets}."
            )
        from ..synth.randomized import RANDOMIZATIONS

        if self.randomization not in RANDOMIZATIONS:
            raise ConfigError(
                f"DatasetSpec: randomization must be one of {sorted(RANDOMIZATIONS)}, got {self.randomization!r}."
            )


def build_dataset(root: str | Path, spec: DatasetSpec = DatasetSpec(), *, progress: bool = True) -> Path:
    """Write the YOLO dataset under ``root`` and return the path of its ``data.yaml``.

    Deterministic for a given ``spec`` (seeded).
    """
    from ..synth.presets import simulate_preset
    from dataclasses import replace

    from ..synth.randomized import RANDOMIZATIONS
    from ..synth.scan import Acquisition
    from ..synth.yolo import export_random, export_scan, write_data_yaml

    root = Path(root)
    ranges = replace(RANDOMIZATIONS[spec.randomization], size=spec.size)
    export_random(root, spec.n_train, split="train", seed=spec.seed, ranges=ranges, progress=progress)
    export_random(root, spec.n_val_random, split="val", seed=spec.seed + 10_000, ranges=ranges, progress=progress)
    rng = np.random.default_rng(spec.seed + 20_000)
    index = spec.n_val_random
    per_scan = 8
    for k in range(int(np.ceil(spec.n_val_presets / per_scan))):
        name = "si_sige_multilayer" if k % 2 == 0 else "tinb_multiphase"
        acq = Acquisition(
            scan_shape=(4, 2), pattern_shape=(spec.size, spec.size),
            disk_radius_px=float(rng.uniform(2.0, 10.0)), dose=float(10 ** rng.uniform(3, 7)),
            seed=int(rng.integers(1 << 30)), rotation_deg=float(rng.uniform(-20, 20)),
        )
        scan = simulate_preset(name, acq)
        index += export_scan(scan, root, split="val", start_index=index)
    logger.info("dataset written to %s", root)
    return write_data_yaml(root)
