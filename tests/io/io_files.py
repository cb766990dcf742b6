"""Writers of tiny detector files for the reader tests (no downloads): Merlin .mib (+ .hdr), Gatan .dm4, EMPAD
.xml + .raw, Dectris/Arina HDF5 master + bitshuffle/LZ4 data files.

Each writes the layout its reader (rosettasciio, or ours for Dectris) expects, so a test can compare what
``load_input`` returns with the array written.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_MIB_DTYPES = {np.dtype(np.uint8): "U08", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32"}


def write_mib(path, data: np.ndarray, *, hdr: bool = True, line_gap_s: float = 0.01) -> Path:
    """A single-chip Merlin .mib file of ``data`` (Rx, Ry, H, W) in uint8/16/32, frames stored as given (big
    endian), with a ``.hdr`` recording the scan shape, or (``hdr=False``) frame timestamps with a flyback gap after
    each line of Ry frames (from which the scan shape can be guessed)."""
    path = Path(path)
    rx, ry, h, w = data.shape
    code = _MIB_DTYPES[np.dtype(data.dtype)]
    frames = data.reshape(rx * ry, h, w).astype(np.dtype(data.dtype).newbyteorder(">"))
    with open(path, "wb") as f:
        for i, frame in enumerate(frames):
            t = i * 0.001 + (i // ry) * line_gap_s
            ts = f"2024-01-01T00:00:{t:012.9f}Z"
            head = (f"MQ1,{i + 1:06d},00384,01,{w:04d},{h:04d},{code},   1x1,01,2024-01-01 00:00:00.000000,"
                    "0.001000,0,0,0,1.2E+2,5.11E+2,0.0E+0,0.0E+0,0.0E+0,0.0E+0,0.0E+0,0.0E+0,3RX,175,511,000,"
                    "000,000,000,000,000,125,255,125,125,100,100,082,100,087,030,128,004,255,129,128,176,168,"
                    f"511,511,MQ1A,{ts},1000000ns,12,")
            f.write(head.encode().ljust(384, b"\0"))
            f.write(frame.tobytes())
    if hdr:
        path.with_suffix(".hdr").write_text(
            "HDR,\t\nTime and Date Stamp (day, mnth, yr, hr, min, s):\t01/01/2024 00:00:00\n"
            f"Frames in Acquisition (Number):\t{rx * ry}\nFrames per Trigger (Number):\t{ry}\nEnd\t\n"
        )
    return path


# -- Gatan DigitalMicrograph 4 ----------------------------------------------------------------------------------
_DM_TYPES = {  # numpy dtype -> (DM image DataType, tag element encoding)
    np.dtype(np.int16): (1, 2), np.dtype(np.float32): (2, 6), np.dtype(np.uint8): (6, 10),
    np.dtype(np.int32): (7, 3), np.dtype(np.uint16): (10, 4), np.dtype(np.uint32): (11, 5),
    np.dtype(np.float64): (12, 7),
}


def _dm_data(name: str, info: list[int], payload: bytes) -> bytes:
    n = name.encode()
    body = b"%%%%" + struct.pack(">Q", len(info)) + b"".join(struct.pack(">Q", i) for i in info) + payload
    return struct.pack(">bH", 21, len(n)) + n + struct.pack(">Q", len(body)) + body


def _dm_group(name: str, entries: list[bytes]) -> bytes:
    n = name.encode()
    return struct.pack(">bH", 20, len(n)) + n + struct.pack(">bbQQ", 0, 1, 0, len(entries)) + b"".join(entries)


def _dm_float(name, v):
    return _dm_data(name, [6], struct.pack("<f", v))


def _dm_long(name, v):
    return _dm_data(name, [3], struct.pack("<i", v))


def _dm_units(name, s):
    chars = np.array([ord(c) for c in s], "<u2")
    return _dm_data(name, [20, 4, len(chars)], chars.tobytes())


def write_dm4(path, data: np.ndarray, scales=(1.0, 1.0, 1.0, 1.0), units=("", "", "", "")) -> Path:
    """A DM4 file with one image ``data`` (array order, e.g. (Rx, Ry, Qx, Qy)) and per-axis calibrations."""
    path = Path(path)
    data = np.ascontiguousarray(data, dtype=np.dtype(data.dtype).newbyteorder("<"))
    dm_type, enc = _DM_TYPES[np.dtype(data.dtype).newbyteorder("=")]
    dims = [_dm_group("", [_dm_float("Origin", 0.0), _dm_float("Scale", float(s)), _dm_units("Units", u)])
            for s, u in zip(scales[::-1], units[::-1])]  # DM lists the fastest axis first
    image_data = _dm_group("ImageData", [
        _dm_group("Calibrations", [
            _dm_group("Brightness", [_dm_float("Origin", 0.0), _dm_float("Scale", 1.0), _dm_units("Units", "")]),
            _dm_group("Dimension", dims),
        ]),
        _dm_data("Data", [20, enc, data.size], data.tobytes()),
        _dm_long("DataType", dm_type),
        _dm_group("Dimensions", [_dm_long("", d) for d in data.shape[::-1]]),
    ])
    image = _dm_group("", [image_data, _dm_group("ImageTags", [_dm_long("ndpd", 1)]), _dm_units("Name", "scan")])
    root = struct.pack(">bbQ", 0, 1, 1) + _dm_group("ImageList", [image])
    path.write_bytes(struct.pack(">iQi", 4, len(root), 1) + root + b"\0" * 8)
    return path


# -- EMPAD ---------------------------------------------------------------------------------------------------------
def write_empad(folder, data: np.ndarray, *, q_per_m: float | None = 2e-11, fov_m: float | None = 4e-9) -> Path:
    """EMPAD ``scan_x{Ry}_y{Rx}.raw`` (128 x 130 float32 frames: two footer rows) and its ``.xml``; returns the
    XML path. ``data`` is (Rx, Ry, 128, 128)."""
    folder = Path(folder)
    rx, ry = data.shape[:2]
    raw = np.zeros((rx, ry, 130, 128), "<f4")
    raw[:, :, :128] = data
    name = f"scan_x{ry}_y{rx}.raw"
    raw.tofile(folder / name)
    cal = f"<calibrated_pixelsize>{q_per_m}</calibrated_pixelsize>" if q_per_m is not None else ""
    fov = (f"<full_scan_field_of_view><x>{fov_m}</x><scale_factor>1.0</scale_factor></full_scan_field_of_view>"
           if fov_m is not None else "")
    xml = folder / "acquisition.xml"
    xml.write_text(f'<?xml version="1.0"?>\n<root><raw_file filename="{name}"/><pix_x>{ry}</pix_x>'
                   f"<pix_y>{rx}</pix_y><iom_measurements>{cal}{fov}</iom_measurements></root>\n")
    return xml


# -- Dectris / Arina -----------------------------------------------------------------------------------------------
def write_dectris(folder, data: np.ndarray, *, per_file: int = 5, name: str = "scan", pixel_mask=None,
                  compression=True, q_geometry: bool = True, stem_pixel_nm: float | None = 0.5) -> Path:
    """An Arina-style acquisition: ``{name}_master.h5`` with external links ``entry/data/data_00000k`` to
    ``{name}_data_00000k.h5`` (frames (n, H, W), one chunk per frame, bitshuffle/LZ4), optional pixel mask and
    geometry, and the STEM metadata file ``{name}.h5``. ``data`` is (Rx, Ry, H, W); returns the master path."""
    import h5py
    import hdf5plugin

    folder = Path(folder)
    frames = data.reshape((-1,) + data.shape[-2:])
    comp = dict(hdf5plugin.Bitshuffle(cname="lz4")) if compression else {}
    master = folder / f"{name}_master.h5"
    with h5py.File(master, "w") as m:
        for k, a in enumerate(range(0, len(frames), per_file), start=1):
            fn = f"{name}_data_{k:06d}.h5"
            with h5py.File(folder / fn, "w") as f:
                f.create_dataset("entry/data/data", data=frames[a:a + per_file],
                                 chunks=(1,) + frames.shape[1:], **comp)
            m[f"entry/data/data_{k:06d}"] = h5py.ExternalLink(fn, "/entry/data/data")
        det = m.create_group("entry/instrument/detector")
        if q_geometry:
            det["x_pixel_size"] = 75e-6
            det["detector_distance"] = 0.1
            m["entry/instrument/beam/incident_wavelength"] = 0.0251
        if pixel_mask is not None:
            det["detectorSpecific/pixel_mask"] = np.asarray(pixel_mask, np.uint32)
    if stem_pixel_nm is not None:
        with h5py.File(folder / f"{name}.h5", "w") as f:
            f.create_group("STEM Metadata").attrs["Pixel Size"] = np.array([stem_pixel_nm])
    return master
