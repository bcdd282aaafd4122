"""The library's version, in a module of its own so that any module can
import it at module level (``multiparam.io`` writes it into every file)."""

__version__ = "0.1.0"
