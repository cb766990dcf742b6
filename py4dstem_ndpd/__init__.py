"""py4dstem-ndpd: neural Bragg-disk detection for 4D-STEM, a drop-in backend for py4DSTEM.

>>> import py4dstem_ndpd
>>> braggpeaks = py4dstem_ndpd.find_Bragg_disks(datacube)        # doctest: +SKIP

Licensed under the GNU Affero General Public License v3 or later (it builds on ultralytics, AGPL-3.0,
and py4DSTEM, GPL-3.0).
"""
from ._offline import configure_offline as _configure_offline

_configure_offline()

from .api import detect_pattern, detect_scan, find_Bragg_disks  # noqa: E402
from .detect.backend import DetectOptions, NDPDBackend  # noqa: E402
from .detect.camera_tail import CameraTail, measure_camera_tail  # noqa: E402
from .exceptions import ConfigError, DeviceError, InputError, ModelLoadError, NDPDError  # noqa: E402
from .peaks import PEAK_DTYPE, ScanPeaks  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CameraTail", "ConfigError", "DetectOptions", "DeviceError", "InputError", "ModelLoadError", "NDPDBackend", "NDPDError",
    "PEAK_DTYPE", "ScanPeaks", "detect_pattern", "detect_scan", "find_Bragg_disks",
    "measure_camera_tail",
]
