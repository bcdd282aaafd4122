"""PNG histograms of each initializer's values per framework (step ``init_hist``).

Drawn with matplotlib when it is installed (``MATPLOTLIB_PIN``); without it
the tour still renders, and says what to install.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, List

from ..registry import all_backends
from .results import display_name

MATPLOTLIB_PIN = "matplotlib==3.10.7"

#: the colour of a backend the registry does not know (a recorded result)
_UNKNOWN_COLOR = "#777777"


def render_histograms(results: Dict[str, dict], outdir=None) -> Dict[str, bytes]:
    """PNG histograms of each initializer's values (step ``init_hist``):
    ``init_histograms.png`` with one column per framework side by side, and
    ``init_hist_<backend>.png`` per framework, in each framework's colour
    from the registry.  Returns {file name: PNG bytes}, also written to
    ``outdir`` when given; {} without matplotlib or without histogram data."""
    data = {b: r["hist"] for b, r in results.items() if r.get("hist")}
    if not data:
        return {}
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return {}

    inits: List[str] = []
    for hist in data.values():
        inits += [k for k in hist if k not in inits]
    specs = all_backends()

    def bars(ax, backend: str, name: str) -> None:
        r, counts = data[backend][name]
        edges = [-r + 2 * r * i / len(counts) for i in range(len(counts) + 1)]
        color = specs[backend].color if backend in specs else _UNKNOWN_COLOR
        ax.bar(edges[:-1], counts, width=2 * r / len(counts), align="edge", color=color)
        ax.set_xlim(-r, r)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])

    def png(fig) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        return buf.getvalue()

    out: Dict[str, bytes] = {}
    backends = list(data)
    fig, axes = plt.subplots(len(inits), len(backends), squeeze=False,
                             figsize=(2.6 * len(backends), 1.5 * len(inits)))
    for j, b in enumerate(backends):
        axes[0][j].set_title(display_name(b), fontsize=10)
        for i, name in enumerate(inits):
            if name in data[b]:
                bars(axes[i][j], b, name)
            if j == 0:
                axes[i][j].set_ylabel(name, fontsize=8)
    fig.suptitle("values of a 256x64 weight after each initializer, per framework", fontsize=10)
    fig.tight_layout()
    out["init_histograms.png"] = png(fig)
    for b in backends:
        fig, axes = plt.subplots(1, len(inits), squeeze=False, figsize=(2.4 * len(inits), 1.8))
        for i, name in enumerate(inits):
            if name in data[b]:
                bars(axes[0][i], b, name)
            axes[0][i].set_title(name, fontsize=8)
        fig.tight_layout()
        out[f"init_hist_{b}.png"] = png(fig)
    if outdir is not None:
        Path(outdir).mkdir(parents=True, exist_ok=True)
        for name, blob in out.items():
            (Path(outdir) / name).write_bytes(blob)
    return out
