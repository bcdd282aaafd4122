"""The toy backend, described without importing its framework: multiparam
reads this to list the backend and to recognise its models by their
classes' top-level package (``roots``)."""
from multiparam import BackendSpec

SPEC = BackendSpec(
    name="toy",
    module="toy_multiparam.adapter",     # exposes ADAPTER; imported on first use
    roots=("toyframework",),             # classes from this package are this backend's
    requires="toyframework",
    install="Install it with `pip install toy-multiparam`.",
    wraps="a toyframework Chain",
)
