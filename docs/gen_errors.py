"""Generate ``docs/errors.md``: every documented error the package raises, as a table.

    python docs/gen_errors.py            # writes docs/errors.md
    python docs/gen_errors.py --check    # exit 1 if docs/errors.md is out of date

The package source is parsed (``ast``, nothing imported) for ``raise InputError|ConfigError|ModelLoadError|
DeviceError(...)`` (and calls of the ``bad(...)`` helper of :class:`~py4dstem_ndpd.baseline.TemplateOptions`).
For each one the table gives where it is raised, the condition (the nearest enclosing ``if``/``elif``), the
message (``{...}`` marks values filled in at run time) and what to do (the clauses of the message that tell the
user what to do; every message is written to say it).
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "py4dstem_ndpd"
OUT = ROOT / "docs" / "errors.md"
ERRORS = ("InputError", "ConfigError", "ModelLoadError", "DeviceError")
#: Clauses of a message that start with one of these words say what to do.
ADVICE = re.compile(
    r"^(use|pass|give|check|choose|reinstall|replace|install|lower|raise|set|rerun|re-copy|omit|build|reshape|"
    r"list|mask|start|delete|remove|call|run|add|increase|decrease|make|provide|simulate|train|fix|try|select|"
    r"keep|see|read|convert|crop|bin|resample|it needs|e\.g\.|for a|the default|is it|reduce|restart|wait|"
    r"either|drop|open|name|re-run|copy|upgrade|update|one of|create|specify|write|lower it|do|put|cut|"
    r"compute|fit|detect|save|load|resume|pick|the default|with|without|to|if|or|mark|known|allowed|evaluate|"
    r"compare|lower|it is half-open)\b", re.I,
)


@dataclass
class Raise:
    error: str
    module: str
    function: str
    line: int
    condition: str
    message: str


def _message(node: ast.AST | None) -> str:
    """The message expression as text: f-string placeholders as ``{expr}``."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            elif isinstance(v, ast.FormattedValue):
                out.append("{" + ast.unparse(v.value) + "}")
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _message(node.left) + _message(node.right)
    return "{" + ast.unparse(node) + "}"


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.stack: list[str] = []
        self.conds: list[str] = []
        self.found: list[Raise] = []

    def _scope(self, node):
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        self.conds.append(test)
        for n in node.body:
            self.visit(n)
        self.conds.pop()
        self.conds.append(f"not ({test})")
        for n in node.orelse:
            self.visit(n)
        self.conds.pop()

    def visit_Try(self, node: ast.Try) -> None:
        for n in node.body:
            self.visit(n)
        for h in node.handlers:
            self.conds.append(f"except {ast.unparse(h.type) if h.type else ''}".strip())
            for n in h.body:
                self.visit(n)
            self.conds.pop()
        for n in node.orelse + node.finalbody:
            self.visit(n)

    def _add(self, error: str, msg_node, line: int) -> None:
        func = ".".join(s for s in self.stack if s != "__post_init__") or "(module)"
        if self.stack and self.stack[-1] == "__post_init__":
            func += " (when built)"
        cond = self.conds[-1] if self.conds else ""
        self.found.append(Raise(error, self.module, func, line, cond, _message(msg_node)))

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc
        if isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) and exc.func.id in ERRORS:
            self._add(exc.func.id, exc.args[0] if exc.args else None, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # TemplateOptions.__post_init__ raises through a local helper: bad("...") -> ConfigError("TemplateOptions: ...")
        if isinstance(node.func, ast.Name) and node.func.id == "bad" and node.args:
            self._add("ConfigError", node.args[0], node.lineno)
        self.generic_visit(node)


def collect() -> list[Raise]:
    found: list[Raise] = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), filename=str(path))
        v = _Visitor(module)
        v.visit(tree)
        found += v.found
    # the helper's own raise (with "{msg}") is replaced by its call sites
    return [r for r in found if r.message != "TemplateOptions: {msg}"]


def _split(message: str) -> tuple[str, str]:
    """(what is wrong, what to do) from a message."""
    msg = " ".join(message.split())
    # split into clauses on "; " and sentence ends (not inside {...})
    parts, depth, cur = [], 0, ""
    i = 0
    while i < len(msg):
        ch = msg[i]
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0 and (msg.startswith("; ", i) or (msg.startswith(": ", i) and ADVICE.match(msg[i + 2:])) or (msg.startswith(". ", i) and not msg[max(0, i - 3):i].endswith("e.g"))):
            parts.append(cur + (ch if ch in ".:" and ch == "." else ""))
            cur = ""
            i += 2
            continue
        cur += ch
        i += 1
    if cur:
        parts.append(cur)
    wrong = [p for p in parts if not ADVICE.match(p.strip())]
    todo = [p for p in parts if ADVICE.match(p.strip())]
    if not wrong:
        wrong, todo = todo[:1], todo[1:]
    return "; ".join(w.strip() for w in wrong), "; ".join(t.strip() for t in todo)


def _cell(text: str) -> str:
    text = text.replace("|", "\\|").replace("`", "'")
    return f"`{text}`" if text else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


COMMON = """\
## The ones you are most likely to meet

| error | when | what to do |
|---|---|---|
| `InputError` | the data is not 4D `(Rx, Ry, Qx, Qy)` (e.g. one pattern, or a 3D stack) | one pattern: `py4dstem_ndpd.api.detect_pattern(pattern)`; a stack of N patterns: reshape to `(N, 1, Qx, Qy)` |
| `InputError` | a pattern contains NaN or Inf (the message gives its flat scan index) | `np.nan_to_num(data, nan=0, posinf=0)` or mask those pixels first |
| `InputError` | patterns smaller than 16 px a side, an empty scan, or a non-numeric dtype | give real 4D counts (integers or floats) |
| `InputError` | a file that does not exist, is truncated, or holds no 4D dataset | check the path; for a generic HDF5 file pass `dataset_path=` (CLI `--dataset`); `h5ls -r file.h5` lists it |
| `ConfigError` | an option out of range, e.g. `DetectOptions(conf=1.5)`, `EngineOptions(batch_size=0)` | raised when the options object is built, before any work; the message gives the valid range |
| `ConfigError` | `EngineOptions(resume=True)` without `checkpoint_dir`, or a checkpoint directory of another run | give the directory of the run to resume, or a new empty one |
| `ModelLoadError` | `weights=` names a missing, corrupt or foreign file | check the path, or omit `weights=` to use the shipped model; fine-tuned files from `ndpd train` load as they are |
| `DeviceError` | `device="cuda"` on a machine without a usable CUDA device | `device="auto"` (CUDA when there is one, else CPU) or `device="cpu"` |
| `OutputExistsError` (a `FileExistsError`, CLI exit code 3) | the output file exists | pass `--overwrite` / `overwrite=True` |

Every error the package raises on purpose derives from `py4dstem_ndpd.exceptions.NDPDError`;
`ConfigError` and `InputError` are also `ValueError`s, `ModelLoadError` and `DeviceError` `RuntimeError`s, so
existing `except ValueError` code keeps working. The `ndpd` command prints them as one line `ndpd: error: ...`
and exits with code 1.

```python
import py4DSTEM
from py4dstem_ndpd import find_Bragg_disks
from py4dstem_ndpd.exceptions import NDPDError

datacube = py4DSTEM.read("my_scan.h5")
try:
    braggpeaks = find_Bragg_disks(datacube)
except NDPDError as err:       # any documented error; the message says what to do
    print(err)
```
"""


def build() -> str:
    rows = collect()
    counts = {e: sum(r.error == e for r in rows) for e in ERRORS}
    parts = [
        "# Errors",
        "",
        "What can go wrong, what the message says and what to do. The full table below is generated from the "
        "source by `docs/gen_errors.py` (rerun it after changing a message); the first table is the short list.",
        "",
        COMMON,
        "## All documented errors",
        "",
        "Generated: " + ", ".join(f"{n} `{e}`" for e, n in counts.items()) + f" ({len(rows)} raise sites). "
        "*Condition* is the enclosing `if` in the source (`not (...)` for an `else` branch, `except ...` for a "
        "wrapped exception); `{...}` in a message is filled in at run time. Errors raised while an options "
        "object is built are marked *(when built)*.",
        "",
    ]
    by_module: dict[str, list[Raise]] = {}
    for r in rows:
        by_module.setdefault(r.module, []).append(r)
    for module, rs in by_module.items():
        parts += [f"### `{module}`", "", "| error | where | condition | message | what to do |", "|---|---|---|---|---|"]
        for r in rs:
            wrong, todo = _split(r.message)
            if not todo and re.search(r"\b(must|needs?|expected|only|should)\b", wrong):
                todo = "use a value that meets the requirement stated in the message"
            parts.append(
                f"| `{r.error}` | `{_md(r.function)}` (line {r.line}) | {_cell(r.condition)} | {_md(wrong)} | "
                f"{_md(todo) or 'see the message'} |"
            )
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from _generate import run

    return run(build, OUT, __doc__.splitlines()[0], "the source", argv)


if __name__ == "__main__":
    sys.exit(main())
