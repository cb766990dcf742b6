"""Errors raised by py4dstem-ndpd.

Every message says what is wrong and what to do about it. Catch :class:`NDPDError` to catch them all.
"""
from __future__ import annotations


class NDPDError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(NDPDError, ValueError):
    """An option has an invalid value (e.g. ``batch_size <= 0``, an unknown backend)."""


class InputError(NDPDError, ValueError):
    """The data given cannot be processed (wrong dimensions, NaN, empty scan, unreadable file...)."""


class ModelLoadError(NDPDError, RuntimeError):
    """The detector weights are missing, corrupt or incompatible."""


class DeviceError(NDPDError, RuntimeError):
    """The requested compute device is not available (e.g. ``device='cuda'`` without CUDA)."""
