"""A GPT-2 written in Flax linen's own style, apart from Hugging Face's:
separate q/k/v ``nn.DenseGeneral`` projections to (heads, head_dim), Flax's
``dot_product_attention`` with a causal mask, ``nn.LayerNorm``, ``nn.Embed``
and its ``attend`` as the tied output head."""
import flax.linen as nn
import jax.numpy as jnp


class SelfAttention(nn.Module):
    heads: int

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        head_dim = width // self.heads
        q = nn.DenseGeneral((self.heads, head_dim), name="query")(x)
        k = nn.DenseGeneral((self.heads, head_dim), name="key")(x)
        v = nn.DenseGeneral((self.heads, head_dim), name="value")(x)
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2]))
        y = nn.dot_product_attention(q, k, v, mask=mask)
        return nn.DenseGeneral(width, axis=(-2, -1), name="out")(y)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        h = nn.gelu(nn.Dense(4 * width, name="fc")(x), approximate=True)
        return nn.Dense(width, name="proj")(h)


class Block(nn.Module):
    heads: int

    @nn.compact
    def __call__(self, x):
        x = x + SelfAttention(self.heads, name="attn")(nn.LayerNorm(1e-5, name="ln_attn")(x))
        return x + MLP(name="mlp")(nn.LayerNorm(1e-5, name="ln_mlp")(x))


class GPT2(nn.Module):
    vocab: int
    positions: int
    width: int
    depth: int
    heads: int

    @nn.compact
    def __call__(self, ids):
        tokens = nn.Embed(self.vocab, self.width, name="tokens")
        x = tokens(ids) + nn.Embed(self.positions, self.width, name="positions")(jnp.arange(ids.shape[-1]))
        for i in range(self.depth):
            x = Block(self.heads, name=f"block_{i}")(x)
        return tokens.attend(nn.LayerNorm(1e-5, name="ln_final")(x))
