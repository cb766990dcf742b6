"""Kinematic reciprocal lattices of simple crystals projected along a zone axis.

The in-plane frame is orthonormal: axis 0 (``qx``, detector rows) and axis 1 (``qy``, detector columns), both in
1/Å. Only the zero-order Laue zone is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Crystal:
    """A crystal: lattice parameters (Å, degrees) and a basis of atoms.

    Attributes
    ----------
    name : str
        Short name used in truth tables and figures.
    cell : tuple of float
        ``(a, b, c, alpha, beta, gamma)`` in Å and degrees.
    atoms : tuple
        ``((x, y, z, Z), ...)`` fractional coordinates and atomic number (scattering strength ~ Z) of the
        atoms of one lattice point.
    centering : tuple
        Lattice centring translations (fractional); reflections they extinguish are always absent.
    """

    name: str
    cell: tuple[float, float, float, float, float, float]
    atoms: tuple[tuple[float, float, float, float], ...]
    centering: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),)

    def real_basis(self) -> np.ndarray:
        """Real-space lattice vectors as rows, shape (3, 3), in Å."""
        a, b, c, al, be, ga = self.cell
        al, be, ga = np.radians([al, be, ga])
        va = np.array([a, 0.0, 0.0])
        vb = np.array([b * np.cos(ga), b * np.sin(ga), 0.0])
        cx = c * np.cos(be)
        cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
        vc = np.array([cx, cy, np.sqrt(max(c * c - cx * cx - cy * cy, 0.0))])
        return np.stack([va, vb, vc])

    def reciprocal_basis(self) -> np.ndarray:
        """Reciprocal lattice vectors as rows, shape (3, 3), in 1/Å (no 2π)."""
        return np.linalg.inv(self.real_basis()).T


@dataclass(frozen=True)
class ZoneReflections:
    """Reflections of the zero-order Laue zone, in the detector frame.

    Attributes
    ----------
    g : ndarray, shape (N, 2)
        In-plane reciprocal vectors (qx, qy) in 1/Å; ``g[0]`` is the direct beam (0, 0).
    hkl : ndarray, shape (N, 3)
        Miller indices.
    f2 : ndarray, shape (N,)
        Kinematic |F|^2 (arbitrary units, Debye-Waller-like damping included), 0 for the direct beam.
    basis : ndarray, shape (2, 2)
        Two short, non-collinear lattice vectors as rows (qx, qy), 1/Å: a primitive basis of the 2D net.
    """

    g: np.ndarray
    hkl: np.ndarray
    f2: np.ndarray
    basis: np.ndarray = field(default_factory=lambda: np.eye(2))


def zone_reflections(
    crystal: Crystal,
    zone: tuple[int, int, int],
    x_direction: tuple[int, int, int],
    g_max: float,
    *,
    keep_forbidden: float = 0.0,
    b_factor: float = 0.5,
) -> ZoneReflections:
    """Enumerate the reflections of a zone axis up to ``|g| <= g_max``.

    Parameters
    ----------
    crystal : Crystal
        Structure.
    zone : tuple of int
        Zone axis ``[uvw]`` (real-space direction along the beam).
    x_direction : tuple of int
        Real-space direction ``[uvw]`` perpendicular to ``zone`` mapped onto the detector ``qx`` (row) axis.
    g_max : float
        Largest |g| kept, 1/Å.
    keep_forbidden : float
        Relative intensity given to kinematically forbidden reflections of the lattice (double diffraction,
        e.g. Si 002 on [110]); 0 drops them.
    b_factor : float
        Damping ``exp(-b_factor * |g|^2)`` (Å^2), mimicking Debye-Waller and form-factor fall-off.

    Returns
    -------
    ZoneReflections
    """
    A = crystal.real_basis()
    B = crystal.reciprocal_basis()
    zone_cart = np.asarray(zone, float) @ A
    zone_cart /= np.linalg.norm(zone_cart)
    ex = np.asarray(x_direction, float) @ A
    ex -= ex.dot(zone_cart) * zone_cart
    ex /= np.linalg.norm(ex)
    ey = np.cross(zone_cart, ex)
    n = int(np.ceil(g_max / np.min(np.linalg.norm(B, axis=1)))) + 1
    r = np.arange(-n, n + 1)
    hkl = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    hkl = hkl[hkl @ np.asarray(zone) == 0]
    gc = hkl @ B
    gl = np.linalg.norm(gc, axis=1)
    keep = gl <= g_max
    hkl, gc, gl = hkl[keep], gc[keep], gl[keep]
    pos = np.array([a[:3] for a in crystal.atoms], float)
    z = np.array([a[3] for a in crystal.atoms], float)
    cen = np.asarray(crystal.centering, float)
    lattice_factor = np.abs(np.exp(2j * np.pi * hkl @ cen.T).sum(1))
    F = (z[None, :] * np.exp(2j * np.pi * hkl @ pos.T)).sum(1) * lattice_factor
    f2 = np.abs(F) ** 2 / max(np.abs(F).max() ** 2, 1e-12)
    # Lattice-allowed but structure-forbidden reflections: keep as weak (double diffraction) or drop.
    forbidden = (f2 < 1e-6) & (lattice_factor > 1e-6)
    f2 = np.where(forbidden, keep_forbidden, f2) * np.exp(-b_factor * gl**2)
    f2[(lattice_factor < 1e-6) | (f2 < 1e-9)] = 0.0
    keep = (f2 > 0) | (gl == 0)
    hkl, gc, gl, f2 = hkl[keep], gc[keep], gl[keep], f2[keep]
    g2 = np.stack([gc @ ex, gc @ ey], axis=1)
    order = np.argsort(gl, kind="stable")
    g2, hkl, f2, gl = g2[order], hkl[order], f2[order], gl[order]
    f2[0] = 0.0  # direct beam: its intensity is set by the simulator
    return ZoneReflections(g=g2, hkl=hkl, f2=f2, basis=_short_basis(g2[1:]))


def _short_basis(g: np.ndarray) -> np.ndarray:
    """Two shortest non-collinear vectors of a 2D net, as rows, the first with the smallest angle to +qx."""
    if len(g) < 2:
        return np.eye(2)
    lens = np.linalg.norm(g, axis=1)
    order = np.argsort(lens, kind="stable")
    first = g[order[0]]
    # among the shortest vectors prefer the one closest to +qx
    shortest = g[np.isclose(lens, lens[order[0]], rtol=1e-6)]
    first = shortest[np.argmax(shortest[:, 0] / np.linalg.norm(shortest, axis=1))]
    for i in order:
        v = g[i]
        cross = first[0] * v[1] - first[1] * v[0]
        if abs(cross) > 1e-6 * lens[order[0]] ** 2:
            return np.stack([first, v if cross > 0 else -v])
    return np.stack([first, np.array([-first[1], first[0]])])


# --- structures used by the presets ------------------------------------------------------------------------------

_FCC = ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0))


def silicon(a: float = 5.431) -> Crystal:
    """Diamond-cubic Si, lattice parameter ``a`` in Å."""
    return Crystal("Si", (a, a, a, 90, 90, 90), ((0, 0, 0, 14.0), (0.25, 0.25, 0.25, 14.0)), _FCC)


def bcc(a: float = 3.30, name: str = "bcc", z: float = 41.0) -> Crystal:
    """A body-centred cubic metal (default: Nb-rich beta Ti-Nb)."""
    return Crystal(name, (a, a, a, 90, 90, 90), ((0, 0, 0, z),), ((0, 0, 0), (0.5, 0.5, 0.5)))


def hcp(a: float = 2.95, c: float = 4.68, name: str = "hcp", z: float = 22.0) -> Crystal:
    """A hexagonal close-packed metal (default: alpha-Ti)."""
    return Crystal(name, (a, a, c, 90, 90, 120), ((1 / 3, 2 / 3, 0.25, z), (2 / 3, 1 / 3, 0.75, z)))


def ordered_oxide(a: float = 3.30, name: str = "Ti3O-like", z_ti: float = 22.0, z_nb: float = 41.0) -> Crystal:
    """A Ti3O-like ordered superstructure of the bcc matrix: cell doubled along x and y, Ti and Nb (and the
    interstitial oxygen they order around) on ordered sites.

    It produces the matrix reflections plus weaker half-order superlattice reflections.
    """
    atoms = []
    for i in range(2):
        for j in range(2):
            z = z_nb if (i, j) == (0, 0) else z_ti
            atoms.append((i / 2, j / 2, 0.0, z))
            atoms.append((i / 2 + 0.25, j / 2 + 0.25, 0.5, z_ti))
    atoms.append((0.25, 0.0, 0.0, 8.0))
    return Crystal(name, (2 * a, 2 * a, a, 90, 90, 90), tuple(atoms))
