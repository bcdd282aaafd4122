"""The tour as Jupyter notebooks: one per backend, holding the code that ran
and the outputs it recorded (nbformat 4, written without Jupyter)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from .results import display_name
from .steps import STEPS


def _lines(text: str) -> List[str]:
    return text.splitlines(keepends=True)


class _Notebook:
    """Cells in the order they are added, numbered as a kernel would."""

    def __init__(self) -> None:
        self.cells: List[dict] = []
        self.executed = 0

    def markdown(self, text: str) -> None:
        self.cells.append({"cell_type": "markdown", "id": f"md{len(self.cells)}", "metadata": {},
                           "source": _lines(text)})

    def code(self, source: str, output: str) -> None:
        self.executed += 1
        outputs = []
        if output:
            outputs.append({"output_type": "stream", "name": "stdout", "text": _lines(output + "\n")})
        self.cells.append({"cell_type": "code", "id": f"code{len(self.cells)}", "metadata": {},
                           "execution_count": self.executed, "source": _lines(source), "outputs": outputs})


def render_notebooks(results: Dict[str, dict], outdir) -> List[str]:
    """One Jupyter notebook (nbformat 4) per backend that ran, with the
    recorded outputs, as ``outdir/tour_<backend>.ipynb``; returns the paths written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    by_id = {s.id: s for s in STEPS}
    for b, r in results.items():
        if r.get("missing"):
            continue
        nb = _Notebook()
        v = r.get("versions", {})
        nb.markdown(f"# Parameter management with {display_name(b)}, side by side with multiparam\n\n"
                    "Each step: the framework's own idiom, then the one multiparam call. The outputs are "
                    "what this code printed when the tour ran ("
                    + ", ".join(f"{k} {x}" for k, x in v.items()) + ").")
        for s in r.get("steps", []):
            step = by_id.get(s["id"])
            text = f"## {s['title']}"
            if step is not None and step.about:
                text += f"\n\n{step.about}"
            if s.get("note"):
                text += f"\n\n*{display_name(b)}:* {s['note']}"
            nb.markdown(text)
            if s["native_code"]:
                nb.code(s["native_code"], s["native_output"])
            nb.code(s["mp_code"], s["mp_output"])
        document = {"nbformat": 4, "nbformat_minor": 5, "cells": nb.cells,
                    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                "language": "python"},
                                 "language_info": {"name": "python", "version": v.get("python", "")}}}
        path = outdir / f"tour_{b}.ipynb"
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        written.append(str(path))
    return written
