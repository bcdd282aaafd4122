"""Writing a tour's results to a folder: the page, its PNGs, the notebooks, results.json."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from .histograms import render_histograms
from .render_html import render_html
from .render_notebook import render_notebooks


def write_all(results: Dict[str, dict], outdir, step_ids: Optional[List[str]] = None,
              html: bool = True, notebooks: bool = True,
              seconds: Optional[float] = None) -> Dict[str, object]:
    """Write the page (with its PNGs beside it), the notebooks and the raw
    results (results.json, to render again with ``--from-json``) to
    ``outdir``; returns what was written: {"results": path, "html": path,
    "pictures": [paths], "notebooks": [paths]}."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, object] = {}
    (outdir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    written["results"] = str(outdir / "results.json")
    if html:
        pictures = render_histograms(results, outdir)
        page = outdir / "index.html"
        page.write_text(render_html(results, step_ids, pictures, seconds), encoding="utf-8")
        written["html"] = str(page)
        written["pictures"] = [str(outdir / n) for n in pictures]
    if notebooks:
        written["notebooks"] = render_notebooks(results, outdir)
    return written
