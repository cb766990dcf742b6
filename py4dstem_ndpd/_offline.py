"""Switch off every network access of ultralytics before it is imported.

ultralytics checks for updates, syncs settings, downloads a font and an AMP-check model and may pip-install
packages at run time. This module sets the documented environment switches (see ``docs/offline.md``) and
must be imported before ``ultralytics``; :func:`import_ultralytics` does both.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _config_dir() -> Path:
    base = os.environ.get("NDPD_CACHE_DIR") or os.path.join(tempfile.gettempdir(), f"ndpd-{os.getuid()}")
    return Path(base)


def configure_offline() -> Path:
    """Set the environment so that ultralytics, matplotlib never reach the network or write to ``~``.

    Returns
    -------
    Path
        The config directory used for ultralytics (``YOLO_CONFIG_DIR``).
    """
    cfg = _config_dir()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg / "ultralytics"))
    os.environ.setdefault("MPLCONFIGDIR", str(cfg / "matplotlib"))
    ydir = Path(os.environ["YOLO_CONFIG_DIR"])
    font_dir = ydir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    Path(os.environ["MPLCONFIGDIR"]).mkdir(parents=True, exist_ok=True)
    # ultralytics' check_font() downloads Arial.ttf unless it exists locally: give it matplotlib's DejaVu font.
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = font_dir / name
        if not target.exists():
            try:
                import matplotlib

                src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
                target.write_bytes(src.read_bytes())
            except Exception:  # noqa: BLE001 - a missing font only degrades plots
                pass
    return ydir


_DONE = False


def import_ultralytics():
    """Import ultralytics with every network access switched off and return the module."""
    global _DONE
    configure_offline()
    import ultralytics
    from ultralytics import settings

    if not _DONE:
        try:
            settings.update(sync=False)
        except Exception:  # noqa: BLE001 - settings are optional
            pass
        _DONE = True
    return ultralytics
