"""A one-page, self-contained HTML report: figures (relative links) and key numbers side by side.

The page has inline CSS and no scripts or external resources; figures are referenced by paths relative to the
report, so the folder can be moved or zipped as a whole.
"""
from __future__ import annotations

import datetime as _dt
import html
import logging
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from ..exceptions import InputError

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em;border-bottom:2px solid #444;padding-bottom:.2em}
h2{font-size:1.15em;margin-top:1.6em;color:#333}
.meta{color:#777;font-size:.85em}
table.numbers{border-collapse:collapse;margin:.5em 0 1em 0;font-size:.92em}
table.numbers td{border-bottom:1px solid #ddd;padding:.15em 1.2em .15em 0}
table.numbers td.v{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right}
.figs{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;flex:1 1 480px;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.8em;color:#555}
"""


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    Attributes
    ----------
    title : str
    text : str
        A paragraph of plain text (HTML is escaped).
    numbers : mapping
        Name -> value (floats are shown with 4 significant digits; units belong in the name, e.g.
        ``"patterns/s"``, ``"precision e_xx"``).
    figures : sequence of path
        Images to show (PNG/JPG/SVG). A ``.pdf`` is linked; if a ``.png`` of the same name exists it is shown and
        links to the PDF.
    """

    title: str
    text: str = ""
    numbers: Mapping[str, Any] = field(default_factory=dict)
    figures: Sequence[PathLike] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InputError(f"ReportSection.title must be a non-empty string, got {self.title!r}")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if v != v:
            return "n/a"
        return f"{v:.4g}"
    return str(value)


def _figure_html(fig: Path, out_dir: Path) -> str:
    fig = Path(fig)
    shown, link = fig, None
    if fig.suffix.lower() == ".pdf":
        png = fig.with_suffix(".png")
        shown, link = (png, fig) if png.exists() else (None, fig)
    if not fig.exists():
        raise InputError(f"report figure {fig} does not exist; write it first (figures.* functions) or drop it.")
    rel = lambda p: html.escape(Path(os.path.relpath(Path(p).resolve(), out_dir.resolve())).as_posix())  # noqa: E731
    cap = html.escape(fig.stem.replace("_", " "))
    if shown is None:
        return f'<figure><a href="{rel(link)}">{cap} (PDF)</a></figure>'
    pdf = shown.with_suffix(".pdf")
    link = link or (pdf if pdf.exists() else None)
    img = f'<img src="{rel(shown)}" alt="{cap}">'
    if link is not None:
        img = f'<a href="{rel(link)}">{img}</a>'
    return f"<figure>{img}<figcaption>{cap}</figcaption></figure>"


def write_report(
    out_dir: PathLike,
    sections: Sequence[ReportSection],
    *,
    title: str = "py4dstem-ndpd report",
    filename: str = "report.html",
) -> Path:
    """Write the report and return its path.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the report (created if missing). Figures may live anywhere; links are relative to this folder.
    sections : sequence of ReportSection
    title : str
    filename : str

    Returns
    -------
    Path
        ``out_dir / filename``.

    Raises
    ------
    InputError
        If ``sections`` is empty, holds something other than ReportSection, or names a missing figure.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> p = write_report(d, [ReportSection("Speed", numbers={"patterns/s": 112.5})])
    >>> "112.5" in p.read_text()
    True
    """
    out = Path(out_dir)
    if not sections:
        raise InputError("write_report needs at least one ReportSection.")
    for s in sections:
        if not isinstance(s, ReportSection):
            raise InputError(f"sections must be ReportSection objects, got {type(s).__name__}")
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">generated {_dt.datetime.now().isoformat(timespec="seconds")}</p>',
    ]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.numbers:
            rows = "".join(
                f'<tr><td>{html.escape(str(k))}</td><td class="v">{html.escape(_fmt(v))}</td></tr>'
                for k, v in s.numbers.items()
            )
            parts.append(f'<table class="numbers">{rows}</table>')
        if s.figures:
            parts.append('<div class="figs">' + "".join(_figure_html(Path(f), out) for f in s.figures) + "</div>")
        parts.append("</section>")
    parts.append("</body></html>")
    path = out / filename
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    log.info("wrote report %s (%d sections)", path, len(sections))
    return path
