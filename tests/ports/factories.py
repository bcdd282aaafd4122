"""``module:factory`` targets for the CLI tests (``multiparam port
tests.ports.factories:hf_gpt2 tests.ports.factories:flax_gpt2 ...``): tiny,
seeded, nothing downloaded."""
import numpy as np

VOCAB, POSITIONS, WIDTH, DEPTH, HEADS = 23, 8, 16, 2, 2


def gpt2_ids():
    return np.random.default_rng(7).integers(0, VOCAB, size=(2, POSITIONS)).astype(np.int64)


def hf_gpt2(seed: int = 0):
    """Hugging Face ``GPT2LMHeadModel`` from a tiny config, random weights,
    inference mode (its head tied to its token embedding)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=WIDTH, n_layer=DEPTH, n_head=HEADS,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():           # biases and norms away from their zero/one init, so they count
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.empty_like(p).uniform_(-0.2, 0.2))
    return model


def flax_gpt2(seed: int = 1):
    """The Flax linen GPT-2 of tests/ports/flax_gpt2.py, and its sample input."""
    from .flax_gpt2 import GPT2
    return GPT2(VOCAB, POSITIONS, WIDTH, DEPTH, HEADS), gpt2_ids()
