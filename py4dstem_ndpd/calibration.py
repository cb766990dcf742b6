"""Pixel calibration carried from the data to BraggVectors and back."""
from __future__ import annotations

from dataclasses import dataclass

from .exceptions import InputError


@dataclass(frozen=True)
class Calibration:
    """Detector and scan pixel sizes.

    Attributes
    ----------
    q_pixel_size : float
        Reciprocal-space size of one detector pixel, in ``q_pixel_units`` (default 1/Å).
    r_pixel_size : float
        Real-space scan step, in ``r_pixel_units`` (default nm).
    q_pixel_units, r_pixel_units : str
        Units as py4DSTEM writes them (``"A^-1"``, ``"nm"``, or ``"pixels"`` when uncalibrated).
    """

    q_pixel_size: float = 1.0
    r_pixel_size: float = 1.0
    q_pixel_units: str = "A^-1"
    r_pixel_units: str = "nm"

    def __post_init__(self) -> None:
        for name in ("q_pixel_size", "r_pixel_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
                raise InputError(
                    f"Calibration.{name} must be a finite positive number, got {v!r}; "
                    "set it with datacube.calibration.set_Q_pixel_size / set_R_pixel_size."
                )

    @classmethod
    def from_py4dstem(cls, calibration) -> "Calibration":
        """Read pixel sizes and units from a ``py4DSTEM.Calibration``; missing values become 1 pixel."""

        def get(name, default):
            try:
                v = getattr(calibration, f"get_{name}")()
            except Exception:  # noqa: BLE001 - a py4DSTEM calibration may lack any field
                v = None
            return default if v is None else v

        qs = float(get("Q_pixel_size", 1.0))
        rs = float(get("R_pixel_size", 1.0))
        return cls(
            q_pixel_size=qs,
            r_pixel_size=rs,
            q_pixel_units=str(get("Q_pixel_units", "pixels")),
            r_pixel_units=str(get("R_pixel_units", "pixels")),
        )

    def apply_to(self, calibration) -> None:
        """Write these pixel sizes and units into a ``py4DSTEM.Calibration``."""
        calibration.set_Q_pixel_size(self.q_pixel_size)
        calibration.set_R_pixel_size(self.r_pixel_size)
        calibration.set_Q_pixel_units(self.q_pixel_units)
        calibration.set_R_pixel_units(self.r_pixel_units)
