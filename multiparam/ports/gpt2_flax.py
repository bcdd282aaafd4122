"""Hugging Face GPT-2 -> a GPT-2 written in Flax linen's own style.

Source: ``transformers.GPT2LMHeadModel`` (``transformer.h.0.attn.c_attn.weight``
is a Conv1D in (in, out) storage holding q, k and v side by side;
``lm_head.weight`` is tied to ``transformer.wte.weight``).  Destination (see
``tests/ports/flax_gpt2.py``)::

    tokens (nn.Embed), positions (nn.Embed)
    block_<i>: ln_attn (nn.LayerNorm), attn: query/key/value (nn.DenseGeneral
               to (H, D)), out (nn.DenseGeneral from (H, D)), ln_mlp, mlp: fc, proj (nn.Dense)
    ln_final (nn.LayerNorm); logits = tokens.attend(h)   (the tied head)

Canonical names and layout are PyTorch's (an ``nn.Linear`` weight is
(out, in); a DenseGeneral (E, H, D) kernel is seen as the (H*D, E) Linear it
is), so the only layout work left is Conv1D's: transpose, and split the
fused q/k/v columns.
"""
from multiparam import merge, rule, split, transpose

RULES = [
    (r"^transformer\.", ""),
    (r"^wte\.", "tokens."),
    (r"^wpe\.", "positions."),
    (r"^ln_f\.", "ln_final."),
    (r"^h\.(\d+)\.", r"block_\1."),
    (r"\.ln_1\.", ".ln_attn."),
    (r"\.ln_2\.", ".ln_mlp."),
    rule(r"\.attn\.c_attn\.weight$", [".attn.query.weight", ".attn.key.weight", ".attn.value.weight"],
         split(1, 3), transpose()),
    rule(r"\.attn\.c_attn\.bias$", [".attn.query.bias", ".attn.key.bias", ".attn.value.bias"], split(0, 3)),
    rule(r"\.attn\.c_proj\.weight$", ".attn.out.weight", transpose()),
    (r"\.attn\.c_proj\.bias$", ".attn.out.bias"),
    rule(r"\.mlp\.c_fc\.weight$", ".mlp.fc.weight", transpose()),
    (r"\.mlp\.c_fc\.bias$", ".mlp.fc.bias"),
    rule(r"\.mlp\.c_proj\.weight$", ".mlp.proj.weight", transpose()),
    (r"\.mlp\.c_proj\.bias$", ".mlp.proj.bias"),
]

#: the way back: the Flax GPT-2 into ``GPT2LMHeadModel`` (q, k, v merged into c_attn)
REVERSE = [
    rule([r"\.attn\.query\.weight$", r"\.attn\.key\.weight$", r"\.attn\.value\.weight$"],
         ".attn.c_attn.weight", transpose(), merge(1)),
    rule([r"\.attn\.query\.bias$", r"\.attn\.key\.bias$", r"\.attn\.value\.bias$"],
         ".attn.c_attn.bias", merge(0)),
    rule(r"\.attn\.out\.weight$", ".attn.c_proj.weight", transpose()),
    (r"\.attn\.out\.bias$", ".attn.c_proj.bias"),
    rule(r"\.mlp\.fc\.weight$", ".mlp.c_fc.weight", transpose()),
    (r"\.mlp\.fc\.bias$", ".mlp.c_fc.bias"),
    rule(r"\.mlp\.proj\.weight$", ".mlp.c_proj.weight", transpose()),
    (r"\.mlp\.proj\.bias$", ".mlp.c_proj.bias"),
    (r"\.ln_attn\.", ".ln_1."),
    (r"\.ln_mlp\.", ".ln_2."),
    (r"^block_(\d+)\.", r"h.\1."),
    (r"^tokens\.", "wte."),
    (r"^positions\.", "wpe."),
    (r"^ln_final\.", "ln_f."),
    (r"^", "transformer."),
]
