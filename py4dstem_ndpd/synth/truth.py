"""Exact ground truth of a simulated scan, and its HDF5 storage beside the py4DSTEM DataCube."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..calibration import Calibration
from ..strain_convention import STRAIN_COMPONENTS

#: dtype of one true disk: scan position, centre (qx row, qy column, px), expected electrons, peak SNR,
#: Miller indices and the index of the crystal component that made it.
TRUTH_DTYPE = np.dtype(
    [
        ("rx", "i4"), ("ry", "i4"), ("qx", "f8"), ("qy", "f8"), ("intensity", "f4"), ("snr", "f4"),
        ("h", "i2"), ("k", "i2"), ("l", "i2"), ("component", "i2"),
    ]
)

STRAIN_FIELDS = STRAIN_COMPONENTS


@dataclass
class ScanTruth:
    """Ground truth of every scan position.

    Attributes
    ----------
    scan_shape, pattern_shape : tuple of int
        ``(Rx, Ry)`` and ``(Qx, Qy)``.
    disks : ndarray of TRUTH_DTYPE, shape (M,)
        Every disk whose centre lies on the detector, sorted by scan position (C order).
    offsets : ndarray, shape (Rx*Ry + 1,)
        Disks of position ``i = rx*Ry + ry`` are ``disks[offsets[i]:offsets[i+1]]``.
    origin : ndarray, shape (Rx, Ry, 2)
        Position (qx, qy) of the direct beam, px.
    lattice : ndarray, shape (Rx, Ry, 2, 2)
        Reciprocal basis vectors ``g1, g2`` (rows, (qx, qy) px) of the main crystal at each position.
    strain : ndarray, shape (Rx, Ry, 4)
        e_xx, e_yy, e_xy (infinitesimal strain of the real lattice, relative to the reference crystal, in the
        detector frame: x = qx/rows) and the rotation theta (rad).
    phase : ndarray of int, shape (Rx, Ry)
        Phase label; names in ``phase_names``.
    phase_names : list of str
    component_names : list of str
        Names of the crystal components (``TRUTH_DTYPE['component']`` indexes this).
    disk_radius : float
        Disk radius, px.
    calibration : Calibration
    meta : dict
        Preset name and parameters.
    """

    scan_shape: tuple[int, int]
    pattern_shape: tuple[int, int]
    disks: np.ndarray
    offsets: np.ndarray
    origin: np.ndarray
    lattice: np.ndarray
    strain: np.ndarray
    phase: np.ndarray
    phase_names: list[str]
    component_names: list[str]
    disk_radius: float
    calibration: Calibration = field(default_factory=Calibration)
    meta: dict = field(default_factory=dict)

    def disks_at(self, rx: int, ry: int) -> np.ndarray:
        """True disks at scan position ``(rx, ry)``."""
        i = rx * self.scan_shape[1] + ry
        return self.disks[self.offsets[i] : self.offsets[i + 1]]

    def strain_map(self, name: str) -> np.ndarray:
        """One strain component as an (Rx, Ry) map: ``"e_xx"``, ``"e_yy"``, ``"e_xy"`` or ``"theta"``."""
        return self.strain[..., STRAIN_FIELDS.index(name)]

    # ---- HDF5 -------------------------------------------------------------------------------------------------
    def to_h5(self, group) -> None:
        """Write into an open ``h5py.Group``."""
        import json

        for name in ("disks", "offsets", "origin", "lattice", "strain", "phase"):
            group.create_dataset(name, data=getattr(self, name), compression="gzip" if name == "disks" else None)
        group.attrs["scan_shape"] = self.scan_shape
        group.attrs["pattern_shape"] = self.pattern_shape
        group.attrs["phase_names"] = json.dumps(self.phase_names)
        group.attrs["component_names"] = json.dumps(self.component_names)
        group.attrs["disk_radius"] = self.disk_radius
        group.attrs["calibration"] = json.dumps(self.calibration.__dict__)
        group.attrs["meta"] = json.dumps(self.meta, default=str)

    @classmethod
    def from_h5(cls, group) -> "ScanTruth":
        """Read from an open ``h5py.Group`` written by :meth:`to_h5`."""
        import json

        a = group.attrs
        return cls(
            scan_shape=tuple(int(v) for v in a["scan_shape"]),
            pattern_shape=tuple(int(v) for v in a["pattern_shape"]),
            disks=group["disks"][()],
            offsets=group["offsets"][()],
            origin=group["origin"][()],
            lattice=group["lattice"][()],
            strain=group["strain"][()],
            phase=group["phase"][()],
            phase_names=json.loads(a["phase_names"]),
            component_names=json.loads(a["component_names"]),
            disk_radius=float(a["disk_radius"]),
            calibration=Calibration(**json.loads(a["calibration"])),
            meta=json.loads(a["meta"]),
        )
