"""``python -m multiparam`` is the ``multiparam`` command."""
from .cli import main

raise SystemExit(main())
