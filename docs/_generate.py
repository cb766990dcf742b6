"""The command line shared by the docs generators (gen_api.py, gen_cli.py, gen_errors.py)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def run(build: Callable[[], str], out: Path, description: str, source: str, argv: list[str] | None = None) -> int:
    """Write ``build()`` to ``out``, or with ``--check`` exit 1 when ``out`` is stale.

    ``source`` names what the page is generated from (used in the ``--check`` help).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--check", action="store_true", help=f"exit 1 if {out.name} differs from {source}")
    p.add_argument("--out", default=str(out))
    a = p.parse_args(argv)
    text = build()
    target = Path(a.out)
    if a.check:
        same = target.exists() and target.read_text() == text
        print(f"docs/{target.name} is up to date" if same else f"docs/{target.name} is out of date: regenerate it")
        return 0 if same else 1
    target.write_text(text)
    print(f"wrote {target} ({len(text.splitlines())} lines)")
    return 0
