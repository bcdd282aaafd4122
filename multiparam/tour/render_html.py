"""The tour as one self-contained HTML page.

Per step, a tab per framework (as the book's), each with the native code
and its output and the multiparam code and its output; a toggle shows every
framework of a step side by side in columns instead.  The page's CSS and JS
(``page.css``, ``page.js`` beside this module) and the histograms (base64
PNGs) are inlined: it needs no network.
"""
from __future__ import annotations

import base64
import html
from importlib import resources
from typing import Dict, List, Optional

from ..registry import all_backends
from .histograms import MATPLOTLIB_PIN, render_histograms
from .render_text import names_table
from .results import display_name, same_everywhere, step_ids_of, step_record
from .steps import STEPS, Step


def _esc(text: str) -> str:
    return html.escape(text or "", quote=True)


def _asset(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def _img(pictures: Dict[str, bytes], name: str, alt: str) -> str:
    if name not in pictures:
        return ""
    data = base64.b64encode(pictures[name]).decode("ascii")
    return f'<img class="hist" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _header(results: Dict[str, dict], seconds: Optional[float]) -> List[str]:
    versions = []
    for b, r in results.items():
        if r.get("missing"):
            versions.append(f"{display_name(b)}: not available")
        else:
            v = r.get("versions", {})
            versions.append(f"{display_name(b)}: " + ", ".join(f"{k} {v[k]}" for k in v if k != "python")
                            + (f" (python {v['python']})" if "python" in v else ""))
    lines = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>multiparam tour: parameter management in four frameworks</title>",
             f"<style>{_asset('page.css')}</style><script>{_asset('page.js')}</script></head><body>",
             "<header><h1>Parameter management, side by side</h1>",
             "<p>Each step of the chapter in every framework's own idiom, next to the one multiparam "
             "call. Every snippet below is the code that ran; every output is what it printed.</p>",
             f"<p>{_esc('; '.join(versions))}</p>"]
    ran = {b: r["seconds"] for b, r in results.items() if r.get("seconds") is not None}
    if ran:
        lines.append("<p>time to run the snippets: " + ", ".join(f"{b} {t:.0f} s" for b, t in ran.items())
                     + (f"; the whole tour {seconds:.0f} s" if seconds else "") + "</p>")
    lines.append("</header>")
    return lines


def _panel(backend: str, result: dict, sid: str, active: bool, pictures: Dict[str, bytes]) -> List[str]:
    """One framework's part of step ``sid``: a tab's panel, or a column."""
    name = display_name(backend)
    spec = all_backends().get(backend)
    color = f' style="border-bottom-color:{_esc(spec.color)}"' if spec is not None else ""
    lines = [f'<div class="{"panel active" if active else "panel"}" data-backend="{_esc(backend)}">',
             f'<h3 class="column-head"{color}>{_esc(name)}</h3>']
    s = step_record(result, sid)
    if result.get("missing"):
        lines.append(f'<p class="missing">{_esc(name)} is not available here: {_esc(result["missing"])}</p>')
    elif s is None:
        lines.append("<p>(not run)</p>")
    else:
        if s.get("note"):
            lines.append(f'<div class="note">{_esc(s["note"])}</div>')
        if s["native_code"]:
            lines.append(f'<div class="label">{_esc(name)}, its own idiom</div>'
                         f'<pre class="code">{_esc(s["native_code"])}</pre>'
                         f'<pre class="out">{_esc(s["native_output"]) or "&nbsp;"}</pre>')
        err = " error" if s.get("error") else ""
        lines.append('<div class="label">multiparam</div>'
                     f'<pre class="code mp">{_esc(s["mp_code"])}</pre>'
                     f'<pre class="out mp{err}">{_esc(s["mp_output"]) or "&nbsp;"}</pre>')
        if sid == "init_hist":
            lines.append(_img(pictures, f"init_hist_{backend}.png",
                              f"histograms of each initializer, {name}"))
    lines.append("</div>")
    return lines


def _section(number: int, sid: str, step: Optional[Step], results: Dict[str, dict],
             pictures: Dict[str, bytes]) -> List[str]:
    """Step ``sid``: its title, the tab bar, and one panel per framework."""
    title = step.title if step else sid
    lines = [f'<section class="step" id="step-{_esc(sid)}"><h2>{number}. {_esc(title)}</h2>']
    if step is not None and step.about:
        lines.append(f'<p class="about">{_esc(step.about)}</p>')
    lines.append('<div class="tabbar">' + "".join(
        f'<button type="button" data-backend="{_esc(b)}" class="{"active" if i == 0 else ""}">'
        f"{_esc(display_name(b))}</button>" for i, b in enumerate(results)) + "</div>")
    lines.append('<div class="panels">')
    for i, (b, r) in enumerate(results.items()):
        lines += _panel(b, r, sid, i == 0, pictures)
    lines.append("</div>")
    same = same_everywhere(results, sid)
    if same:
        lines.append(f'<p class="same">The multiparam output reads the same on {_esc(", ".join(same))}.</p>')
    if sid == "init_hist":
        if pictures:
            lines.append('<div class="label">all frameworks side by side</div>'
                         + _img(pictures, "init_histograms.png",
                                "histograms of each initializer per framework"))
        else:
            lines.append(f"<p>(install {MATPLOTLIB_PIN} for the histograms)</p>")
    lines.append("</section>")
    return lines


def render_html(results: Dict[str, dict], step_ids: Optional[List[str]] = None,
                pictures: Optional[Dict[str, bytes]] = None, seconds: Optional[float] = None) -> str:
    """One self-contained HTML page of ``results``: per step, a tab per
    framework (clicking one shows that framework in every step) or, with
    the toggle, every framework side by side.  ``pictures`` are the
    histograms (drawn here when not given); ``seconds`` the whole tour's time."""
    if pictures is None:
        pictures = render_histograms(results)
    step_ids = step_ids or step_ids_of(results)
    by_id = {s.id: s for s in STEPS}
    toc = " ".join(f'<a href="#step-{_esc(sid)}">{_esc(sid)}</a>' for sid in step_ids)
    body = [f'<main style="--columns:{max(len(results), 1)}">',
            f'<div class="toolbar"><nav class="toc">Steps: {toc}</nav>'
            '<button type="button" id="layout-toggle" aria-pressed="false" '
            'title="every framework of a step at once, one column each">'
            'All frameworks side by side</button></div>']
    for number, sid in enumerate(step_ids, 1):
        body += _section(number, sid, by_id.get(sid), results, pictures)
    rows = names_table(results)
    if rows:
        body.append('<section class="step" id="names"><h2>Canonical names and each framework\'s own</h2>'
                    f'<pre class="out">{_esc(chr(10).join(rows[1:]))}</pre></section>')
    return "\n".join(_header(results, seconds) + body + ["</main></body></html>"])
