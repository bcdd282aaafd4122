"""The tour in a terminal: each step, then each backend's idiom and output
beside the multiparam call and its output, within a given width."""
from __future__ import annotations

import textwrap
from typing import Dict, List, Optional

from .results import same_everywhere, step_ids_of, step_record
from .steps import STEPS

#: the most lines of output shown per snippet; code gets more room
MAX_LINES = 14


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
    by_id = {s.id: s for s in STEPS}
    for sid in step_ids or step_ids_of(results):
        step = by_id.get(sid)
        out += [rule] + _clip(f"Step {sid}: {step.title if step else sid}", width) + [rule]
        if step is not None and step.about:
            out += _clip(step.about, width)
        for backend, r in results.items():
            out.append(f"--- {backend} " + "-" * (width - 5 - len(backend)))
            if r.get("missing"):
                out += _clip("not available: " + r["missing"], width)
                continue
            s = step_record(r, sid)
            if s is None:
                continue
            if s.get("note"):
                out += _clip("note: " + s["note"], width)
            if s["native_code"]:
                out += ["  " + line for line in _clip(s["native_code"], width - 2, 30)]
                out += ["  | " + line for line in _clip(s["native_output"], width - 4)]
            out += ["  multiparam:"] + ["  " + line for line in _clip(s["mp_code"], width - 2, 30)]
            out += ["  | " + line for line in _clip(s["mp_output"], width - 4, 20)]
        same = same_everywhere(results, sid)
        if same:
            out.append(f"(the multiparam output reads the same on {', '.join(same)})")
        out.append("")
    out += names_table(results)
    return "\n".join(out)


def names_table(results: Dict[str, dict]) -> List[str]:
    """A title, then one row per canonical name and one column per
    backend's native name for it (the spec step's model)."""
    backends = [b for b, r in results.items() if r.get("names")]
    if not backends:
        return []
    canon: List[str] = []
    for b in backends:
        canon += [n for n in results[b]["names"] if n not in canon]
    header = ["canonical"] + backends
    rows = [[n] + [results[b]["names"].get(n, ["-"])[0] for b in backends] for n in canon]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def fmt(cells: List[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return ["Same spec in every framework: canonical names and each framework's own names",
            fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
