"""The tour: the chapter's steps in four frameworks, side by side, live.

``steps/`` holds each step's code as real Python files (one per framework's
own idiom, one for the multiparam call) and the table of titles and notes;
``runner`` executes those files, one namespace per backend like a notebook,
reaching a backend that lives in another environment (MXNet) through
``multiparam.bridge``; ``render_text``, ``render_html``, ``render_notebook``
and ``histograms`` turn the recorded results into the terminal view, one
HTML page, a notebook per backend and PNG histograms; ``write_all`` writes
them to a folder.  Which backends exist, their order, names and colours
come from ``multiparam.registry``.
"""
from .histograms import MATPLOTLIB_PIN, render_histograms
from .render_html import render_html
from .render_notebook import render_notebooks
from .render_text import names_table, render_text
from .results import same_everywhere, step_record
from .runner import collect, run_backend, run_snippet
from .steps import STEP_IDS, STEPS, Step
from .write import write_all

__all__ = [
    "collect", "run_backend", "run_snippet", "STEP_IDS", "STEPS", "Step", "render_text",
    "names_table", "render_html", "render_notebooks", "render_histograms", "MATPLOTLIB_PIN",
    "same_everywhere", "step_record", "write_all",
]
