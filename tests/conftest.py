"""Shared fixtures: small simulated scans with truth, and a network guard."""
from __future__ import annotations

import os
import socket

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from py4dstem_ndpd._offline import configure_offline

configure_offline()


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Fail if anything tries to open a network connection (DNS lookups included); yields the attempt log."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise NetworkAttempt(f"network access attempted: {args[:2]!r}")

    def guarded_connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        return refuse(address)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(*a))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(*a))
    monkeypatch.setattr(socket, "gethostbyname", lambda *a, **k: refuse(*a))
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


@pytest.fixture(scope="session")
def si_scan():
    """A small Si/SiGe scan at high dose: 12 x 3 positions, 256 x 256 px, 1e6 electrons per pattern."""
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    return simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(12, 3), pattern_shape=(256, 256), dose=1e6, seed=3))


@pytest.fixture(scope="session")
def tinb_scan():
    """A small Ti-Nb scan: 16 x 16 positions, 256 x 256 px, 1e6 electrons per pattern."""
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    return simulate_preset("tinb_multiphase", Acquisition(scan_shape=(16, 16), pattern_shape=(256, 256), dose=1e6, seed=4))
