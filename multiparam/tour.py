"""The tour: the chapter's steps in four frameworks, side by side, live.

``run_backend`` executes every step's snippets (tour_steps.STEPS) for one
backend in this process and records what they printed.  ``collect`` does it
for many backends, running the ones that are not importable here in their
own environment through ``multiparam.bridge`` (MXNet), so one command shows
all four.  ``render_text`` lays the results out for a terminal.
"""
from __future__ import annotations

import ast
import contextlib
import io
import platform
import textwrap
import time
import traceback
from typing import Dict, Iterable, List, Optional

from .backend import use_backend
from .tour_steps import BACKEND_ORDER, STEP_IDS, STEPS, Step

MAX_LINES = 14


def run_snippet(code: str, ns: dict) -> str:
    """Execute ``code`` in ``ns`` like a notebook cell: what it prints, then
    the repr of its last expression, if any."""
    tree = ast.parse(code)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(tree, "<tour>", "exec"), ns)
        if last is not None:
            value = eval(compile(last, "<tour>", "eval"), ns)
            if value is not None:
                print(repr(value))
    return buf.getvalue().rstrip("\n")


def _versions(backend: str) -> Dict[str, str]:
    import importlib

    mods = {"torch": ["torch"], "jax": ["jax", "flax"], "tensorflow": ["tensorflow", "keras"],
            "mxnet": ["mxnet"]}.get(backend, [])
    out = {"python": platform.python_version()}
    for name in mods + ["numpy"]:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # pragma: no cover - a broken install is shown, not fatal
            out[name] = "?"
    return out


def run_backend(backend: str, step_ids: Optional[Iterable[str]] = None) -> dict:
    """Run the selected steps for one backend here; JSON-able result."""
    wanted = set(step_ids or STEP_IDS)
    ns: dict = {"__name__": "__tour__"}
    steps: List[dict] = []
    started = time.perf_counter()
    with use_backend(backend):
        # steps build on each other (one notebook tab), so earlier ones always run
        last_wanted = max(i for i, s in enumerate(STEPS) if s.id in wanted)
        for step in STEPS[:last_wanted + 1]:
            t0 = time.perf_counter()
            record = {"id": step.id, "title": step.title, "note": step.note.get(backend, ""),
                      "about": step.about,
                      "native_code": step.native[backend], "mp_code": step.multiparam_code(backend)}
            for key, code in (("native_output", record["native_code"]), ("mp_output", record["mp_code"])):
                if not code:                  # a step done with multiparam alone
                    record[key] = ""
                    continue
                try:
                    record[key] = run_snippet(code, ns)
                except Exception:
                    record[key] = traceback.format_exc(limit=3)
                    record["error"] = True
            record["seconds"] = round(time.perf_counter() - t0, 2)
            if step.id in wanted:
                steps.append(record)
    names = {}
    m = ns.get("same") or ns.get("m")
    if m is not None:
        names = {n: [p.native_name, list(p.native_shape or ())] for n, p in m.named_parameters().items()}
    hist = ns.get("hist") if "init_hist" in wanted else None
    return {"backend": backend, "ok": not any(s.get("error") for s in steps), "steps": steps,
            "names": names, "versions": _versions(backend),
            "hist": hist if isinstance(hist, dict) else {},
            "seconds": round(time.perf_counter() - started, 2)}


def collect(backends: Iterable[str], step_ids: Optional[Iterable[str]] = None) -> Dict[str, dict]:
    """Results per backend: here when importable, else from its worker
    environment, else a column that says how to install it."""
    from . import bridge

    step_ids = list(step_ids or STEP_IDS)
    results = {}
    for backend in backends:
        if bridge.importable_here(backend):
            results[backend] = run_backend(backend, step_ids)
            continue
        try:
            results[backend] = bridge.run_worker_json(
                backend, ["tour", "--json", "--backend", backend, "--step", ",".join(step_ids)])
            results[backend]["via"] = bridge.worker_python(backend)
        except bridge.WorkerError as exc:
            results[backend] = {"backend": backend, "ok": False, "missing": str(exc), "steps": [],
                                "names": {}}
    return results


def order(backends: Iterable[str]) -> List[str]:
    """Registry order, torch first: torch must be imported before tensorflow."""
    backends = list(backends)
    return [b for b in BACKEND_ORDER if b in backends] + [b for b in backends if b not in BACKEND_ORDER]


# -- terminal rendering ---------------------------------------------------------
def _clip(text: str, width: int, max_lines: int = MAX_LINES) -> List[str]:
    lines = []
    for raw in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(raw, width, replace_whitespace=False, drop_whitespace=False,
                                   subsequent_indent="  ") or [""])
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [f"... ({len(lines) - max_lines + 1} more lines)"]
    return lines


def render_text(results: Dict[str, dict], width: int = 100,
                step_ids: Optional[List[str]] = None) -> str:
    """Each step, then each backend: its idiom and output, the multiparam
    call and output; closing with the canonical-name table.  A backend that
    could not run says so, with how to install it, in its place."""
    out: List[str] = []
    rule = "=" * width
    if step_ids is None:
        step_ids = []
        for r in results.values():
            for s in r.get("steps", []):
                if s["id"] not in step_ids:
                    step_ids.append(s["id"])
        step_ids = step_ids or list(STEP_IDS)
    titles = {s.id: s.title for s in STEPS}
    abouts = {s.id: s.about for s in STEPS}
    for sid in step_ids:
        out += [rule] + _clip(f"Step {sid}: {titles.get(sid, sid)}", width) + [rule]
        if abouts.get(sid):
            out += _clip(abouts[sid], width)
        for backend, r in results.items():
            out.append(f"--- {backend} " + "-" * (width - 5 - len(backend)))
            if r.get("missing"):
                out += _clip("not available: " + r["missing"], width)
                continue
            s = next((s for s in r["steps"] if s["id"] == sid), None)
            if s is None:
                continue
            if s.get("note"):
                out += _clip("note: " + s["note"], width)
            if s["native_code"]:
                out += ["  " + l for l in _clip(s["native_code"], width - 2, 30)]
                out += ["  | " + l for l in _clip(s["native_output"], width - 4)]
            out += ["  multiparam:"] + ["  " + l for l in _clip(s["mp_code"], width - 2, 30)]
            out += ["  | " + l for l in _clip(s["mp_output"], width - 4, 20)]
        same = same_everywhere(results, sid)
        if same:
            out.append(f"(the multiparam output reads the same on {', '.join(same)})")
        out.append("")
    out += names_table(results, width)
    return "\n".join(out)


def step_record(result: dict, sid: str) -> Optional[dict]:
    return next((s for s in result.get("steps", []) if s["id"] == sid), None)


def same_everywhere(results: Dict[str, dict], sid: str) -> List[str]:
    """The backends whose multiparam output of step ``sid`` is identical,
    when that is every backend that ran (at least two); else []."""
    ran = {b: step_record(r, sid) for b, r in results.items() if not r.get("missing")}
    outs = {b: s["mp_output"] for b, s in ran.items() if s is not None and not s.get("error")}
    if len(outs) >= 2 and len(outs) == len(ran) and len(set(outs.values())) == 1:
        return list(outs)
    return []


def names_table(results: Dict[str, dict], width: int = 100) -> List[str]:
    """One row per canonical name, one column per backend's native name."""
    backends = [b for b, r in results.items() if r.get("names")]
    if not backends:
        return []
    canon = []
    for b in backends:
        for n in results[b]["names"]:
            if n not in canon:
                canon.append(n)
    header = ["canonical"] + backends
    rows = [[n] + [results[b]["names"].get(n, ["-"])[0] for b in backends] for n in canon]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return ["Same spec in every framework: canonical names and each framework's own names",
            fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


# -- pictures -------------------------------------------------------------------
HIST_BACKEND_COLORS = {"torch": "#ee4c2c", "jax": "#5e97f6", "tensorflow": "#ff8f00", "mxnet": "#3c9b4a"}
MATPLOTLIB_PIN = "matplotlib==3.10.7"


def render_histograms(results: Dict[str, dict], outdir=None) -> Dict[str, bytes]:
    """PNG histograms of each initializer's values (step ``init_hist``):
    ``init_histograms.png`` with one column per framework side by side, and
    ``init_hist_<backend>.png`` per framework.  Returns {file name: PNG
    bytes}, also written to ``outdir`` when given; {} without matplotlib or
    without histogram data."""
    data = {b: r["hist"] for b, r in results.items() if r.get("hist")}
    if not data:
        return {}
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return {}
    import io as _io

    inits = []
    for h in data.values():
        inits += [k for k in h if k not in inits]

    def bars(ax, backend, name):
        r, counts = data[backend][name]
        edges = [-r + 2 * r * i / len(counts) for i in range(len(counts) + 1)]
        ax.bar(edges[:-1], counts, width=2 * r / len(counts), align="edge",
               color=HIST_BACKEND_COLORS.get(backend, "#777"))
        ax.set_xlim(-r, r)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])

    def png(fig) -> bytes:
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        return buf.getvalue()

    out: Dict[str, bytes] = {}
    backends = list(data)
    fig, axes = plt.subplots(len(inits), len(backends), squeeze=False,
                             figsize=(2.6 * len(backends), 1.5 * len(inits)))
    for j, b in enumerate(backends):
        axes[0][j].set_title(b, fontsize=10)
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
        from pathlib import Path

        Path(outdir).mkdir(parents=True, exist_ok=True)
        for name, blob in out.items():
            (Path(outdir) / name).write_bytes(blob)
    return out


# -- HTML -------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px;font-size:22px} header p{margin:2px 0;font-size:13px;color:#cfd8dc}
main{max-width:1100px;margin:0 auto;padding:12px 24px 60px}
nav.toc{font-size:13px;margin:12px 0} nav.toc a{margin-right:10px;color:#1565c0}
section.step{background:#fff;border:1px solid #ddd;border-radius:6px;margin:18px 0;padding:6px 18px 14px}
section.step h2{font-size:18px;margin:10px 0 4px} .about{font-size:14px;color:#444;margin:4px 0 8px}
.tabbar{display:flex;border-bottom:2px solid #e0e0e0;margin-top:6px}
.tabbar button{background:none;border:none;padding:8px 16px;font-size:14px;cursor:pointer;color:#555;
  border-bottom:3px solid transparent;margin-bottom:-2px;text-transform:uppercase;letter-spacing:.04em}
.tabbar button.active{color:#000;border-bottom-color:#ff4081;font-weight:600}
.panel{display:none;padding-top:8px} .panel.active{display:block}
.label{font-size:12px;font-weight:600;color:#607d8b;margin:10px 0 2px;text-transform:uppercase}
pre{margin:0;padding:8px 10px;overflow-x:auto;font-size:12.5px;line-height:1.35}
pre.code{background:#f5f5f5;border-left:3px solid #90a4ae} pre.out{background:#fff;border-left:3px solid #cfd8dc;color:#333}
pre.mp{border-left-color:#ff4081} pre.error{color:#b71c1c;border-left-color:#b71c1c}
.note{font-size:13px;background:#fff8e1;border-left:3px solid #ffb300;padding:5px 9px;margin:6px 0}
.same{font-size:13px;color:#2e7d32;margin:10px 0 0} .missing{color:#b71c1c;font-size:14px;white-space:pre-wrap}
img.hist{max-width:100%;margin-top:8px;border:1px solid #eee}
table.names{border-collapse:collapse;font-size:13px} table.names td,table.names th{border:1px solid #ddd;padding:3px 8px}
"""

_JS = """
window.__tourErrors = [];
window.addEventListener('error', function (e) { window.__tourErrors.push(String(e.message)); });
function showBackend(backend) {
  document.querySelectorAll('section.step').forEach(function (sec) {
    if (!sec.querySelector('.panel[data-backend="' + backend + '"]')) return;
    sec.querySelectorAll('.tabbar button').forEach(function (b) {
      b.classList.toggle('active', b.dataset.backend === backend); });
    sec.querySelectorAll('.panel').forEach(function (p) {
      p.classList.toggle('active', p.dataset.backend === backend); });
  });
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('.tabbar button').forEach(function (b) {
    b.addEventListener('click', function () { showBackend(b.dataset.backend); });
  });
});
"""


def _esc(text: str) -> str:
    import html as _html

    return _html.escape(text or "", quote=True)


def render_html(results: Dict[str, dict], step_ids: Optional[List[str]] = None,
                pictures: Optional[Dict[str, bytes]] = None, seconds: Optional[float] = None) -> str:
    """One self-contained HTML page: per step, a tab per framework (as the
    book's), each with the native code and its output and the multiparam
    code and its output.  Clicking a tab shows that framework in every
    step.  Inline CSS, JS and base64 PNGs: no network."""
    import base64

    if pictures is None:
        pictures = render_histograms(results)
    backends = list(results)
    if step_ids is None:
        step_ids = []
        for r in results.values():
            step_ids += [s["id"] for s in r.get("steps", []) if s["id"] not in step_ids]
        step_ids = step_ids or list(STEP_IDS)
    by_id = {s.id: s for s in STEPS}

    def img(name: str, alt: str) -> str:
        if name not in pictures:
            return ""
        data = base64.b64encode(pictures[name]).decode("ascii")
        return f'<img class="hist" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'

    versions = []
    for b, r in results.items():
        if r.get("missing"):
            versions.append(f"{b}: not available")
        else:
            v = r.get("versions", {})
            versions.append(f"{b}: " + ", ".join(f"{k} {v[k]}" for k in v if k != "python")
                            + (f" (python {v['python']})" if "python" in v else ""))
    head = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>multiparam tour: parameter management in four frameworks</title>",
            f"<style>{_CSS}</style><script>{_JS}</script></head><body>",
            "<header><h1>Parameter management, side by side</h1>",
            "<p>Each step of the chapter in every framework's own idiom, next to the one multiparam "
            "call. Every snippet below is the code that ran; every output is what it printed.</p>",
            f"<p>{_esc('; '.join(versions))}</p>"]
    ran = {b: r["seconds"] for b, r in results.items() if r.get("seconds") is not None}
    if ran:
        head.append("<p>time to run the snippets: " + ", ".join(f"{b} {t:.0f} s" for b, t in ran.items())
                    + (f"; the whole tour {seconds:.0f} s" if seconds else "") + "</p>")
    head.append("</header><main>")
    toc = " ".join(f'<a href="#step-{_esc(sid)}">{_esc(sid)}</a>' for sid in step_ids)
    body = [f'<nav class="toc">Steps: {toc}</nav>']
    for n, sid in enumerate(step_ids, 1):
        step = by_id.get(sid)
        title = step.title if step else sid
        body.append(f'<section class="step" id="step-{_esc(sid)}"><h2>{n}. {_esc(title)}</h2>')
        if step is not None and step.about:
            body.append(f'<p class="about">{_esc(step.about)}</p>')
        body.append('<div class="tabbar">' + "".join(
            f'<button type="button" data-backend="{_esc(b)}" class="{"active" if i == 0 else ""}">'
            f"{_esc(b)}</button>" for i, b in enumerate(backends)) + "</div>")
        for i, b in enumerate(backends):
            r = results[b]
            cls = "panel active" if i == 0 else "panel"
            body.append(f'<div class="{cls}" data-backend="{_esc(b)}">')
            s = step_record(r, sid)
            if r.get("missing"):
                body.append(f'<p class="missing">{_esc(b)} is not available here: {_esc(r["missing"])}</p>')
            elif s is None:
                body.append("<p>(not run)</p>")
            else:
                if s.get("note"):
                    body.append(f'<div class="note">{_esc(s["note"])}</div>')
                if s["native_code"]:
                    body.append(f'<div class="label">{_esc(b)}, its own idiom</div>'
                                f'<pre class="code">{_esc(s["native_code"])}</pre>'
                                f'<pre class="out">{_esc(s["native_output"]) or "&nbsp;"}</pre>')
                err = " error" if s.get("error") else ""
                body.append('<div class="label">multiparam</div>'
                            f'<pre class="code mp">{_esc(s["mp_code"])}</pre>'
                            f'<pre class="out mp{err}">{_esc(s["mp_output"]) or "&nbsp;"}</pre>')
                if sid == "init_hist":
                    body.append(img(f"init_hist_{b}.png", f"histograms of each initializer, {b}"))
            body.append("</div>")
        same = same_everywhere(results, sid)
        if same:
            body.append(f'<p class="same">The multiparam output reads the same on {_esc(", ".join(same))}.</p>')
        if sid == "init_hist":
            if pictures:
                body.append('<div class="label">all frameworks side by side</div>'
                            + img("init_histograms.png", "histograms of each initializer per framework"))
            else:
                body.append(f"<p>(install {MATPLOTLIB_PIN} for the histograms)</p>")
        body.append("</section>")
    rows = names_table(results)
    if rows:
        body.append('<section class="step" id="names"><h2>Canonical names and each framework\'s own</h2>'
                    f'<pre class="out">{_esc(chr(10).join(rows[1:]))}</pre></section>')
    return "\n".join(head + body + ["</main></body></html>"])


# -- notebooks --------------------------------------------------------------------
def _nb_lines(text: str) -> List[str]:
    lines = text.splitlines(True)
    return lines


def render_notebooks(results: Dict[str, dict], outdir) -> List[str]:
    """One Jupyter notebook (nbformat 4) per backend that ran, with the
    recorded outputs; returns the paths written."""
    import json
    from pathlib import Path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    by_id = {s.id: s for s in STEPS}
    for b, r in results.items():
        if r.get("missing"):
            continue
        cells: List[dict] = []
        count = 0

        def md(text: str) -> None:
            cells.append({"cell_type": "markdown", "id": f"md{len(cells)}", "metadata": {},
                          "source": _nb_lines(text)})

        def code(src: str, output: str) -> None:
            nonlocal count
            count += 1
            outputs = []
            if output:
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": _nb_lines(output + "\n")})
            cells.append({"cell_type": "code", "id": f"code{len(cells)}", "metadata": {},
                          "execution_count": count, "source": _nb_lines(src), "outputs": outputs})

        v = r.get("versions", {})
        md(f"# Parameter management with {b}, side by side with multiparam\n\n"
           "Each step: the framework's own idiom, then the one multiparam call. The outputs are "
           "what this code printed when the tour ran (" + ", ".join(f"{k} {x}" for k, x in v.items())
           + ").")
        for s in r.get("steps", []):
            step = by_id.get(s["id"])
            text = f"## {s['title']}"
            if step is not None and step.about:
                text += f"\n\n{step.about}"
            if s.get("note"):
                text += f"\n\n*{b}:* {s['note']}"
            md(text)
            if s["native_code"]:
                code(s["native_code"], s["native_output"])
            code(s["mp_code"], s["mp_output"])
        nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                          "language": "python"},
                           "language_info": {"name": "python", "version": v.get("python", "")}}}
        path = outdir / f"tour_{b}.ipynb"
        path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
        written.append(str(path))
    return written


def write_all(results: Dict[str, dict], outdir, step_ids: Optional[List[str]] = None,
              html: bool = True, notebooks: bool = True, seconds: Optional[float] = None) -> Dict[str, object]:
    """Write the page (with its PNGs beside it), the notebooks and the raw
    results (results.json) to ``outdir``; returns what was written."""
    import json
    from pathlib import Path

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
