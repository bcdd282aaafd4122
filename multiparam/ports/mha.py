"""PyTorch ``nn.MultiheadAttention`` <-> Keras 3 ``MultiHeadAttention`` and
Flax linen ``MultiHeadDotProductAttention``.

torch keeps q, k and v in one ``in_proj_weight`` (3E, E) and ``in_proj_bias``
(3E,); Keras keeps ``query``/``key``/``value`` EinsumDense kernels (E, H, D)
with (H, D) biases and an ``attention_output`` kernel (H, D, E); Flax keeps
``query``/``key``/``value`` DenseGeneral kernels (E, H, D) and ``out``
(H, D, E).  In canonical layout (torch's) each of those per-head kernels is
the (H*D, E) or (E, H*D) ``nn.Linear`` weight it computes, heads outer, as
torch splits E, so a port only splits or merges the fused projection.

The rules assume the attention layer has the same name on both sides (the
torch module's attribute, the Keras/Flax layer's name): ``attn.in_proj_weight``
-> ``attn.query_dense.weight``.  Prepend a rename for other names.
"""
from multiparam import merge, rule, split

TO_KERAS = [
    rule(r"in_proj_weight$", ["query_dense.weight", "key_dense.weight", "value_dense.weight"], split(0, 3)),
    rule(r"in_proj_bias$", ["query_dense.bias", "key_dense.bias", "value_dense.bias"], split(0, 3)),
    (r"out_proj\.", "output_dense."),
]

FROM_KERAS = [
    rule([r"query_dense\.weight$", r"key_dense\.weight$", r"value_dense\.weight$"], "in_proj_weight", merge(0)),
    rule([r"query_dense\.bias$", r"key_dense\.bias$", r"value_dense\.bias$"], "in_proj_bias", merge(0)),
    (r"output_dense\.", "out_proj."),
]

TO_FLAX = [
    rule(r"in_proj_weight$", ["query.weight", "key.weight", "value.weight"], split(0, 3)),
    rule(r"in_proj_bias$", ["query.bias", "key.bias", "value.bias"], split(0, 3)),
    (r"out_proj\.", "out."),
]

FROM_FLAX = [
    rule([r"query\.weight$", r"key\.weight$", r"value\.weight$"], "in_proj_weight", merge(0)),
    rule([r"query\.bias$", r"key\.bias$", r"value\.bias$"], "in_proj_bias", merge(0)),
    (r"\.out\.", ".out_proj."),
]

RULES = TO_KERAS
