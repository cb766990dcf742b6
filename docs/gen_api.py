"""Generate ``docs/api.md`` from the numpydoc docstrings of the public modules.

    python docs/gen_api.py            # writes docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

Only the standard library (``inspect``) is used: each module listed in :data:`SECTIONS` is imported, its public
objects are taken from ``__all__`` (or, without one, the public functions and classes defined in the module
itself), and each docstring is turned into Markdown (numpydoc sections become bold headings with definition
lists; ``Examples`` become Python code blocks). Nothing is executed beyond the imports.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

#: (section title, module, names or None for "every public object of the module"), in page order.
SECTIONS: list[tuple[str, str, list[str] | None]] = [
    ("Drop-in entry points", "py4dstem_ndpd", ["find_Bragg_disks", "detect_scan", "detect_pattern"]),
    ("Detector", "py4dstem_ndpd.detect.backend", ["DetectOptions", "NDPDBackend", "get_backend", "disk_intensities"]),
    ("Model loading", "py4dstem_ndpd.detect.model",
     ["load_model", "shipped_weights_path", "resolve_device", "export_ndpd_weights", "to_ultralytics_checkpoint"]),
    ("Normalisation", "py4dstem_ndpd.detect.preprocess", ["normalize", "to_uint8"]),
    ("Dead pixels and detector gaps", "py4dstem_ndpd.detect.dead_pixels", ["repair_dead_pixels"]),
    ("Backend protocol", "py4dstem_ndpd.backend", ["Backend"]),
    ("Refinement", "py4dstem_ndpd.refine",
     ["refine_centres", "refine", "RefineOptions", "Refinement", "autocorrelation", "lattice_from_autocorrelation",
      "LatticeFit", "find_basis", "reduce_basis", "lattice_strain", "deformation_gradient", "noise_detections",
      "estimate_gain"]),
    ("Peak tables", "py4dstem_ndpd.peaks", ["PEAK_DTYPE", "empty_peaks", "make_peaks", "ScanPeaks"]),
    ("Calibration", "py4dstem_ndpd.calibration", ["Calibration"]),
    ("Input and output", "py4dstem_ndpd.io.readers", ["load_input", "InputData"]),
    ("Writers", "py4dstem_ndpd.io.writers", ["save_py4dstem", "check_writable", "OutputExistsError"]),
    ("Throughput engine", "py4dstem_ndpd.engine",
     ["EngineOptions", "DistributedOptions", "run_scan", "run_distributed", "ClusterSpec", "load_config",
      "open_client", "EngineStats", "ArraySource", "DaskSource", "H5Source", "Checkpoint"]),
    ("Bridge to py4DSTEM", "py4dstem_ndpd.bridge",
     ["to_braggvectors", "from_braggvectors", "calibration_of", "truth_to_scanpeaks", "to_ndpd_options",
      "to_py4dstem_options"]),
    ("Template-matching baseline", "py4dstem_ndpd.baseline",
     ["TemplateOptions", "TemplateResult", "template_matching", "symmetry_centre", "settings_summary"]),
    ("Camera models (held-out benchmark)", "py4dstem_ndpd.synth.cameras", ["QuadGaps", "Scintillator", "Binned"]),
    ("Evaluation against truth", "py4dstem_ndpd.evaluate",
     ["match_peaks", "evaluate_detections", "DetectionMetrics", "strain_error"]),
    ("Comparison with template matching", "py4dstem_ndpd.compare",
     ["CompareOptions", "compare", "ComparisonResult", "MethodResult", "agreement"]),
    ("Strain maps", "py4dstem_ndpd.analysis.strain",
     ["StrainOptions", "strain_map", "StrainResult", "strain_from_lattice", "reference_mask", "line_profile"]),
    ("Phase maps", "py4dstem_ndpd.analysis.phase", ["PhaseOptions", "phase_map", "PhaseResult", "PhaseSummary"]),
    ("Virtual images", "py4dstem_ndpd.analysis.virtual", None),
    ("Figures", "py4dstem_ndpd.analysis.figures", None),
    ("Report", "py4dstem_ndpd.analysis.report", None),
    ("Simulator", "py4dstem_ndpd.synth",
     ["Acquisition", "simulate_preset", "simulate", "SimulatedScan", "ScanTruth", "save_scan", "load_scan",
      "PRESETS", "sige_strain"]),
    ("Domain randomisation", "py4dstem_ndpd.synth.randomized", ["RandomizationRanges", "RandomPattern"]),
    ("Training", "py4dstem_ndpd.training", ["DatasetSpec", "build_dataset", "TrainOptions", "train"]),
    ("Pseudo-labels for fine-tuning", "py4dstem_ndpd.training.pseudolabels", ["pseudo_label"]),
    ("Demo", "py4dstem_ndpd.demo", ["DemoOptions", "run_demo"]),
    ("Errors", "py4dstem_ndpd.exceptions", ["NDPDError", "ConfigError", "InputError", "ModelLoadError", "DeviceError"]),
]

#: numpydoc sections rendered as definition lists ("name : type" then an indented description).
LIST_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Raises", "Warns", "Attributes"}
PROSE_SECTIONS = {"Notes", "References", "See Also", "Warnings", "Methods"}


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", text.lower().replace(" ", "-"))


def _convert_inline(text: str) -> str:
    """Sphinx roles (``:func:`~a.b``) -> Markdown code; double backticks -> single."""
    text = re.sub(r":(?:func|class|meth|mod|attr|data|obj|exc|py:\w+):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return text


def _split_sections(doc: str) -> list[tuple[str | None, list[str]]]:
    """Split a cleaned docstring into (section title or None for the summary, lines)."""
    lines = doc.splitlines()
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()) and len(nxt.strip()) >= len(line.strip()) - 1:
            out.append((line.strip(), []))
            i += 2
            continue
        out[-1][1].append(line)
        i += 1
    return out


def _render_list(lines: list[str]) -> list[str]:
    """numpydoc "name : type" items with indented descriptions -> Markdown bullet list."""
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line.strip():
            if items:
                items[-1][1].append("")
            continue
        if not line.startswith(" "):
            items.append((line.strip(), []))
        elif items:
            items[-1][1].append(line.strip())
        else:
            items.append(("", [line.strip()]))
    md = []
    for head, desc in items:
        if " : " in head:
            name, typ = head.split(" : ", 1)
            label = f"`{name.strip()}` : *{_convert_inline(typ.strip())}*"
        elif head:
            label = f"`{head}`" if re.fullmatch(r"[\w., ]+", head) else _convert_inline(head)
        else:
            label = ""
        text = " ".join(d for d in desc if d).strip()
        md.append(f"- {label}" + (f" — {_convert_inline(text)}" if text else ""))
    return md


def _render_examples(lines: list[str]) -> list[str]:
    body = textwrap.dedent("\n".join(lines)).strip("\n")
    return ["```python", body, "```"] if body else []


def _render_prose(lines: list[str]) -> list[str]:
    """Free text: keep paragraphs; indented blocks (code, ``::`` literal blocks) become fenced code."""
    out: list[str] = []
    block: list[str] = []

    def flush():
        if block:
            code = textwrap.dedent("\n".join(block)).strip("\n")
            out.extend(["```", code, "```"])
            block.clear()

    in_block = False
    prev_literal = False
    for line in lines:
        if in_block:
            if line.strip() == "" or line.startswith("    "):
                block.append(line)
                continue
            in_block = False
            flush()
        if prev_literal and line.startswith("    "):
            in_block = True
            block.append(line)
            continue
        if line.lstrip().startswith(">>>"):  # a doctest in free text
            block.append(line)
            continue
        if block and not in_block:
            flush()
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
            prev_literal = True
        elif line.strip():
            prev_literal = False
        out.append(_convert_inline(line))
    flush()
    return out


def render_docstring(doc: str | None, level: int) -> list[str]:
    """Markdown lines for a numpydoc docstring; ``level`` is the heading level of the object."""
    if not doc:
        return ["*(no docstring)*"]
    doc = inspect.cleandoc(doc)
    out: list[str] = []
    for title, lines in _split_sections(doc):
        if title is None:
            out.extend(_render_prose(lines))
        elif title in LIST_SECTIONS:
            out.extend(["", f"**{title}**", ""])
            out.extend(_render_list(lines))
        elif title == "Examples":
            out.extend(["", "**Examples**", ""])
            out.extend(_render_examples(lines))
        else:
            out.extend(["", f"**{_convert_inline(title)}**", ""])
            out.extend(_render_prose(lines))
    # collapse runs of blank lines
    clean: list[str] = []
    for line in out:
        if line.strip() == "" and clean and clean[-1].strip() == "":
            continue
        clean.append(line.rstrip())
    while clean and not clean[0].strip():
        clean.pop(0)
    while clean and not clean[-1].strip():
        clean.pop()
    return clean


def _signature(obj) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    text = str(sig)
    text = re.sub(r" at 0x[0-9a-f]+", "", text)  # stable output
    # string annotations (``from __future__ import annotations``) print quoted: unquote them
    text = re.sub(r"(: |-> )\"'([^']*)'\"", r"\1\2", text)
    text = re.sub(r"(: |-> )'([^']*)'", r"\1\2", text)
    text = re.sub(r'(: |-> )"([^"]*)"', r"\1\2", text)
    text = re.sub(r' -> None$', "", text)
    return text


def _public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names:
        return list(names)
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == module.__name__:
            out.append(name)
    return out


def _methods(cls) -> list[tuple[str, object]]:
    out = []
    for name, member in cls.__dict__.items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            out.append((name, member.__func__))
        elif isinstance(member, property):
            out.append((name, member))
        elif inspect.isfunction(member):
            out.append((name, member))
    return out


def render_object(qualname: str, obj, level: int = 3) -> list[str]:
    h = "#" * level
    if inspect.isclass(obj):
        kind = "dataclass" if dataclasses.is_dataclass(obj) else ("exception" if issubclass(obj, BaseException)
                                                                    else "class")
        sig = "" if issubclass(obj, BaseException) else _signature(obj)
        bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
        lines = [f"{h} `{qualname}`", "", f"*{kind}*" + (f" (bases: {bases})" if bases else ""), ""]
        if sig:
            lines += ["```python", f"{qualname.rsplit('.', 1)[-1]}{sig}", "```", ""]
        lines += render_docstring(obj.__doc__, level)
        for mname, member in _methods(obj):
            if isinstance(member, property):
                lines += ["", f"**`.{mname}`** *(property)*", ""]
                lines += render_docstring(member.__doc__, level + 1)
            else:
                lines += ["", f"**`.{mname}{_signature(member)}`**", ""]
                lines += render_docstring(member.__doc__, level + 1)
        return lines
    if callable(obj):
        lines = [f"{h} `{qualname}`", "", "```python", f"{qualname.rsplit('.', 1)[-1]}{_signature(obj)}", "```", ""]
        return lines + render_docstring(obj.__doc__, level)
    # a constant: show its value
    value = re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"\1", repr(obj))  # stable output
    if len(value) > 300:
        value = value[:300] + " ..."
    return [f"{h} `{qualname}`", "", "```python", f"{qualname.rsplit('.', 1)[-1]} = {value}", "```"]


def _module_doc_of_constant(module, name: str) -> str | None:
    """The ``#:`` comment above a module-level constant, if any."""
    try:
        src = inspect.getsource(module)
    except (OSError, TypeError):
        return None
    m = re.search(rf"((?:^#:.*\n)+)^{re.escape(name)}\s*=", src, re.M)
    if not m:
        return None
    return " ".join(line[2:].strip() for line in m.group(1).splitlines())


def build() -> str:
    sys.path.insert(0, str(ROOT))
    from py4dstem_ndpd import __version__

    parts = [
        "# API reference",
        "",
        f"Generated by `docs/gen_api.py` from the docstrings of py4dstem-ndpd {__version__}; do not edit by hand "
        "(rerun `python docs/gen_api.py`).",
        "",
        "Conventions everywhere: `qx` is the detector **row**, `qy` the **column**, both in pixels, pixel `i` "
        "centred on `i`; `rx, ry` index the scan position. Options are frozen dataclasses checked when built "
        "(a bad value raises `ConfigError` at once).",
        "",
        "## Contents",
        "",
    ]
    body: list[str] = []
    toc: list[str] = []
    skipped: list[str] = []
    for title, modname, names in SECTIONS:
        try:
            module = importlib.import_module(modname)
        except ImportError as err:
            skipped.append(f"{modname} ({err})")
            continue
        names = names if names is not None else _public_names(module)
        present = [n for n in names if hasattr(module, n)]
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            skipped.append(f"{modname}: {', '.join(missing)}")
        if not present:
            continue
        toc.append(f"- [{title}](#{_anchor(title)}) — `{modname}`")
        body += ["", f"## {title}", "", f"`{modname}`", ""]
        mdoc = module.__doc__ or ""
        if mdoc.strip():
            body += render_docstring(mdoc, 2) + [""]
        for name in present:
            obj = getattr(module, name)
            body += [""] + render_object(f"{modname}.{name}", obj)
            if not (inspect.isclass(obj) or callable(obj)):
                note = _module_doc_of_constant(module, name)
                if note:
                    body += ["", _convert_inline(note)]
            body.append("")
    parts += toc
    if skipped:
        parts += ["", "*Not documented here (not importable or not present when this page was generated):* "
                  + "; ".join(f"`{s}`" for s in skipped)]
    parts += body
    text = "\n".join(parts)
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from _generate import run

    return run(build, OUT, __doc__.splitlines()[0], "the docstrings", argv)


if __name__ == "__main__":
    sys.exit(main())
