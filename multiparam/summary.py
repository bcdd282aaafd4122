"""A readable table of a model's parameters, for a terminal and a notebook."""
from __future__ import annotations

import html
from typing import List

from .errors import NotMaterializedError
from .param import format_shape

COLUMNS = ("name", "native name", "shape", "native shape", "dtype", "trainable", "tied with", "sharding")
#: columns shown only when some row has something in them
_OPTIONAL = ("tied with", "sharding")


class Summary:
    """Rows of (canonical name, native name, shape, native shape, dtype,
    trainable, tied with, sharding); ``str()`` is a text table,
    ``_repr_html_`` HTML.  The sharding column (``Shard(dim=0 over
    'fsdp'=4)``) shows for a model with a sharded parameter."""

    def __init__(self, model):
        self.backend = model.backend
        self.native_type = type(model.native).__name__
        self.rows: List[tuple] = []
        for name, p in model.named_parameters().items():
            self.rows.append((
                name, p.native_name, format_shape(p.shape), format_shape(p.native_shape),
                str(p.dtype) if p.dtype is not None else "?",
                "yes" if p.trainable else "no",
                ", ".join(p.aliases[1:]),
                repr(p.sharding) if p.is_sharded else "",
            ))
        try:
            self.total = f"{model.num_parameters():,}"
        except NotMaterializedError:
            self.total = "unknown until the first forward"

    def _columns(self):
        keep = [i for i, c in enumerate(COLUMNS) if c not in _OPTIONAL or any(r[i] for r in self.rows)]
        return keep

    def __str__(self) -> str:
        keep = self._columns()
        header = [COLUMNS[i] for i in keep]
        rows = [[r[i] for i in keep] for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        out = [f"{self.native_type} ({self.backend}): {len(self.rows)} parameters, {self.total} values",
               line(header), line("-" * w for w in widths)]
        out += [line(r) for r in rows]
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        keep = self._columns()
        esc = lambda x: html.escape(str(x))
        head = "".join(f"<th>{esc(COLUMNS[i])}</th>" for i in keep)
        body = "".join("<tr>" + "".join(f"<td><code>{esc(r[i])}</code></td>" for i in keep) + "</tr>"
                       for r in self.rows)
        caption = esc(f"{self.native_type} ({self.backend}): {len(self.rows)} parameters, {self.total} values")
        return (f"<table class='multiparam-summary'><caption>{caption}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
