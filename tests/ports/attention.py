"""Self-attention written three ways, each in its framework's own style,
the attention layer named ``attn`` in each."""


def torch_attention(width: int, heads: int, seed: int = 0):
    import torch
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    torch.manual_seed(seed)
    with torch.no_grad():        # biases start at zero in torch: make them count
        net = SelfAttention().eval()
        net.attn.in_proj_bias.uniform_(-0.5, 0.5)
        net.attn.out_proj.bias.uniform_(-0.5, 0.5)
    return net


def keras_attention(width: int, heads: int, tokens: int, seed: int = 1):
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input((tokens, width))
    y = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, name="attn")(x, x)
    return keras.Model(x, y)


def flax_attention(heads: int):
    import flax.linen as nn

    class SelfAttention(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.MultiHeadDotProductAttention(num_heads=heads, name="attn")(x)

    return SelfAttention()
