"""Rule sets for real ports, to copy and adapt: each module has ``RULES``
(source names -> destination names and layout ops) and says which models it
joins.  ``mp.plan(src, dst, rules=module)`` takes a module with ``RULES``.

- :mod:`multiparam.ports.gpt2_flax`: Hugging Face GPT-2 (``GPT2LMHeadModel``,
  Conv1D weights in (in, out) storage, fused ``c_attn``) into a GPT-2 written
  in Flax linen's own style (separate q/k/v ``DenseGeneral`` with (E, H, D)
  kernels), and ``REVERSE`` back;
- :mod:`multiparam.ports.mha`: PyTorch ``nn.MultiheadAttention``
  (fused ``in_proj_weight`` (3E, E)) into Keras 3's ``MultiHeadAttention``
  ((E, H, D) kernels, output (H, D, E)) and into Flax's
  ``MultiHeadDotProductAttention``, and back (``TO_KERAS``, ``FROM_KERAS``, ``TO_FLAX``, ``FROM_FLAX``).
"""
