"""The chapter's PyTorch idioms (seeds 000, 003, 004 and the pytorch tab of 001).

A kit for :class:`multiparam.testing.NativeKit`: everything here reaches
parameters the way the chapter does, never through multiparam."""
import math

import numpy as np
import torch
from torch import nn

from ..models import MLP_SHAPES
from . import CheckpointModel, Distribution, NativeCase, NativeCNN, PortCase, RealModel, SharedMemoryCase, exact_sum

# -- facts about PyTorch ------------------------------------------------------------------
MODEL_TYPES = (nn.Module,)
KEEPS_NATIVE_GRAD = True          # backward() leaves .grad on every Parameter
KEEPS_PARAMETER_OBJECTS = True    # writes go into the same nn.Parameter
BN_MOMENTUM_WEIGHS_OLD = False    # running = (1 - momentum) * running + momentum * batch


def dense_default(fan_in, fan_out):
    # nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)); bias the same
    bound = 1 / math.sqrt(fan_in)
    return Distribution.uniform(-bound, bound), Distribution.uniform(-bound, bound)


def _tensor(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def _attribute(m, name):
    """net.get_submodule(path).<attr>: a Parameter, a buffer, or what a
    parametrized weight's property computes."""
    path, _, attr = name.rpartition(".")
    module = m.native.get_submodule(path) if path else m.native
    return getattr(module, attr)


def read(m, name):
    # the chapter: net[2].bias.data (a parametrized weight reads through its property)
    return _attribute(m, name).detach().numpy().copy()


def to_numpy(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # NumPy has no bfloat16/float8: float32 holds every such value exactly
        return (value.float() if value.dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)
                else value).numpy()
    return np.asarray(value)


def forward(m, x):
    with torch.no_grad():
        return m.native(_tensor(x)).numpy()


def count(m):
    return sum(p.numel() for p in m.native.parameters() if p.requires_grad)


def grads(m, x):
    net = m.native
    net.zero_grad(set_to_none=True)
    net(_tensor(x)).sum().backward()
    out = {name: p.grad.numpy().copy() for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    return out


def backward(m, x):
    m.native(_tensor(x)).sum().backward()      # accumulates into .grad, as a training loop does


def native_grads(m):
    out = {}
    for name in m.named_parameters():
        grad = _attribute(m, name).grad
        out[name] = None if grad is None else grad.numpy().copy()
    return out


def _chapter_input():
    torch.manual_seed(0)
    return torch.rand(size=(2, 4))


def lazy_mlp():
    """d2l 001: nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))."""
    X = _chapter_input()
    return NativeCase(nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1)), X, MLP_SHAPES)


def mlp():
    """d2l 000: the same MLP with its input size written out."""
    X = _chapter_input()
    return NativeCase(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), X, MLP_SHAPES)


def rgnet():
    """d2l 000: four named blocks nested in a Sequential (rgnet[0][1][0].bias)."""
    X = _chapter_input()

    def block1():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

    def block2():
        net = nn.Sequential()
        for i in range(4):
            net.add_module(f"block {i}", block1())
        return net

    shapes = {}
    for i in range(4):
        shapes.update({f"0.block {i}.0.weight": (8, 4), f"0.block {i}.0.bias": (8,),
                       f"0.block {i}.2.weight": (4, 8), f"0.block {i}.2.bias": (4,)})
    shapes.update({"1.weight": (1, 4), "1.bias": (1,)})
    return NativeCase(nn.Sequential(block2(), nn.Linear(4, 1)), X, shapes)


def shared():
    """d2l 001: one LazyLinear used at positions 2 and 4."""
    X = _chapter_input()
    layer = nn.LazyLinear(8)
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), layer, nn.ReLU(), layer, nn.ReLU(), nn.LazyLinear(1))
    return NativeCase(net, X, {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                               "6.weight": (1, 8), "6.bias": (1,)},
                      ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")])


def tied_1x1():
    """seed 004: nn.Linear(1, 1, bias=False) used twice."""
    linear = nn.Linear(1, 1, bias=False)
    return NativeCase(nn.Sequential(linear, linear), torch.ones(1, 1), {"0.weight": (1, 1)},
                      ties=[("0.weight", "1.weight")])


def custom_parameter():
    """seed 004: only an nn.Parameter registers; a plain tensor attribute does not."""
    torch.manual_seed(0)

    class MyModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight1 = nn.Parameter(torch.rand(20, 20))
            self.weight2 = torch.rand(20, 20)

        def forward(self, x):
            return x @ self.weight1

    return NativeCase(MyModel(), torch.rand(2, 20), {"weight1": (20, 20)})


def chapter_models():
    return {"lazy-mlp": lazy_mlp, "mlp": mlp, "rgnet": rgnet, "shared": shared,
            "tied-1x1": tied_1x1, "custom-parameter": custom_parameter}


def sgd_step(m, x, lr):
    """One native SGD step on sum(outputs); the optimizer is built after the tie."""
    net = m.native
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    opt.zero_grad()
    net(_tensor(x)).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


# -- real models: written by PyTorch's authors -------------------------------------------
# torch's own collect-all is parameters() plus the running statistics buffers;
# other buffers (BatchNorm's num_batches_tracked, an int64 step counter in
# state_dict) are not parameters, and neither torch's parameters() nor
# multiparam counts them.
_STATS = ("running_mean", "running_var")


def native_arrays(m):
    net = m.native
    # torch's collect-all of the state: state_dict, a tied tensor once (as
    # named_parameters de-duplicates it), under its first key
    seen, out = set(), []
    for n, t in net.state_dict(keep_vars=True).items():
        if id(t) not in seen:
            seen.add(id(t))
            out.append((n, t.detach().numpy()))
    return out


def infer(m, x):
    net = m.native
    net.eval()
    with torch.no_grad():
        y = net(x)
    ys = y if isinstance(y, tuple) else (y,)          # LSTM: output, (h_n, c_n)
    flat = []
    for t in ys:
        flat.extend(t if isinstance(t, tuple) else (t,))
    return [t.numpy() for t in flat]


def _real(make, x):
    """A RealModel of ``make()`` with torch's own view of it."""
    def fresh(seed):
        torch.manual_seed(seed)
        net = make()
        with torch.no_grad():        # running statistics as training would leave them
            for name, b in net.named_buffers():
                if name.rpartition(".")[2] == "running_mean":
                    b.normal_()
                elif name.rpartition(".")[2] == "running_var":
                    b.uniform_(0.5, 2.0)
        return net, {}

    net, _ = fresh(0)
    # torch's own view of the whole state: state_dict, parameters and
    # persistent buffers (running statistics, the BatchNorm step counter)
    state = net.state_dict()
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(t.numel() for t in state.values())
    value_sum = exact_sum([t.numpy() for t in state.values()])
    counters = [n for n in state if n.rpartition(".")[2] == "num_batches_tracked"]
    return RealModel(net, x, trainable, total, value_sum, list(state), fresh, not_parameters=counters)


def transformer_encoder_layer():
    torch.manual_seed(100)
    return _real(lambda: nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32,
                                                    batch_first=True, dropout=0.0).eval(),
                 torch.rand(2, 5, 16))


def lstm():
    """nn.LSTM with two layers."""
    torch.manual_seed(101)
    return _real(lambda: nn.LSTM(8, 16, num_layers=2, batch_first=True), torch.rand(2, 5, 8))


def cnn_batchnorm():
    """torch's own layers with BatchNorm buffers (num_batches_tracked included)."""
    torch.manual_seed(102)
    return _real(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                       nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10)).eval(),
                 torch.rand(2, 3, 8, 8))


def real_models():
    return {"TransformerEncoderLayer": transformer_encoder_layer, "LSTM": lstm,
            "CNN-BatchNorm2d": cnn_batchnorm}


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
def bn_momentum(layer):
    return layer.momentum


def bn_train_step(m, x):
    """One training-mode forward of Sequential(BatchNorm); the new running mean."""
    net = m.native
    net.train()
    with torch.no_grad():
        net(_tensor(x))
    return net[0].running_mean.detach().numpy().copy()


def native_cnn():
    """Conv -> Flatten -> Dense written in torch (NCHW)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 5 * 4, 3))
    return NativeCNN(net, torch.rand(2, 1, 5, 4), conv="0", dense="2")


# -- checkpoints as people hold them (tests/conformance/test_checkpoints.py) -----------
#: kinds of case this kit has none of, and why (see conftest): torch has them all
ABSENT: dict = {}
#: floating dtypes torch computes in on a CPU (float8 is storage only)
FORWARD_DTYPES = ("float16", "bfloat16", "float32", "float64")

_HF_CONFIGS = {
    "bert": ("BertModel", "BertConfig", dict(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                              num_attention_heads=4, intermediate_size=37,
                                              max_position_embeddings=64)),
    "gpt2": ("GPT2LMHeadModel", "GPT2Config", dict(vocab_size=99, n_positions=64, n_embd=32, n_layer=2,
                                                   n_head=4, bos_token_id=0, eos_token_id=0)),
    "t5": ("T5ForConditionalGeneration", "T5Config", dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37,
                                                          num_layers=2, num_heads=4,
                                                          decoder_start_token_id=0, pad_token_id=0,
                                                          eos_token_id=1)),
    "llama": ("LlamaForCausalLM", "LlamaConfig", dict(vocab_size=99, hidden_size=32, intermediate_size=37,
                                                      num_hidden_layers=2, num_attention_heads=4,
                                                      num_key_value_heads=2, max_position_embeddings=64,
                                                      bos_token_id=0, eos_token_id=1)),
}


def _hf_inputs(arch: str) -> dict:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 99, (2, 7), generator=gen)
    if arch == "bert":   # BertModel has no loss of its own: a loss a user would write is the kit's
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if arch == "t5":
        return {"input_ids": ids, "labels": torch.randint(2, 99, (2, 5), generator=gen)}
    return {"input_ids": ids, "labels": ids}


def _hf_loss(arch, out):
    # BertModel returns hidden states only: the sum of the last hidden state
    return out.last_hidden_state.float().sum() if arch == "bert" else out.loss


def _hf_state(net) -> dict:
    """torch's state_dict as NumPy: bfloat16 as its raw 16 bits (NumPy has
    no bfloat16; equal bits are equal values)."""
    return {n: (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
            for n, t in net.state_dict().items()}


def _hf_builder(arch: str, dtype):
    def build():
        import transformers
        from safetensors.torch import load_file

        model_cls, config_cls, kw = _HF_CONFIGS[arch]
        config = getattr(transformers, config_cls)(**kw)

        def fresh(seed):
            torch.manual_seed(seed)
            return getattr(transformers, model_cls)(config).to(dtype).eval()

        def save_native(net, folder, max_shard_size):
            net.save_pretrained(str(folder), **({} if max_shard_size is None else
                                                {"max_shard_size": max_shard_size}))

        def load_native(net, path):
            result = net.load_state_dict(load_file(str(path)), strict=False)
            net.tie_weights()          # the transformers idiom after loading weights by hand
            return list(result.missing_keys), list(result.unexpected_keys)

        def loss_grads(net, inputs):
            net.zero_grad()
            _hf_loss(arch, net(**inputs)).backward()
            out = {n: p.grad.float().numpy() for n, p in net.named_parameters() if p.grad is not None}
            net.zero_grad()
            return out

        net = fresh(0)
        return CheckpointModel(net, _hf_inputs(arch), fresh, save_native, load_native, loss_grads,
                               _hf_state, atol=1e-6 if dtype == torch.float32 else 2e-2)
    return build


def checkpoint_models():
    return {f"{arch}-{name}": _hf_builder(arch, dtype) for arch in _HF_CONFIGS
            for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}


def checkpoint_loss(label: str):
    """The loss ``m.grad`` must differentiate for a checkpoint model: the
    model's own (``"model"``), or, for a model with none, the same function
    the kit's ``loss_grads`` uses, as a callable."""
    arch = label.split("-")[0]
    return (lambda out, target: _hf_loss(arch, out)) if arch == "bert" else "model"


# -- two instances of one architecture (tests/conformance/test_twins.py) -----------------
def _views_of_one_tensor():
    """Two Parameters over one tensor: the whole of it, and two of its rows
    (``nn.Parameter`` keeps the memory of the tensor it is given)."""
    class Views(nn.Module):
        def __init__(self):
            super().__init__()
            base = torch.zeros(4, 6)
            self.whole = nn.Parameter(base)
            self.rows = nn.Parameter(base[1:3])

        def forward(self, x):
            return x @ self.whole.T

    def load(net, state):
        net.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
    return SharedMemoryCase(Views, load)


def shared_memory_models():
    return {"views-of-one-tensor": _views_of_one_tensor}


def twin_models():
    """Two instances each, built apart (other seeds): their canonical names
    must not differ, and a transfer must make them compute the same."""
    def encoder():
        layer = lambda: nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32,
                                                   batch_first=True, dropout=0.0).eval()
        torch.manual_seed(1)
        a = layer()
        torch.manual_seed(2)
        return a, layer(), torch.rand(2, 5, 16)

    def cnn():
        torch.manual_seed(3)
        make = lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                                     nn.LazyLinear(2)).eval()
        a, b, x = make(), make(), torch.rand(2, 3, 6, 6)
        a(x), b(x)                                         # materialise the lazy layer
        return a, b, x

    return {"TransformerEncoderLayer": encoder, "CNN": cnn}


# -- porting (tests/conformance/test_port.py) --------------------------------------------------
#: the reference's numbered names onto this model's attribute names
PORT_RULES = [(r"^0\.", "encoder."), (r"^2\.", "norm."), (r"^3\.", "head.")]


def port_models():
    """An nn.Module written apart from the reference Sequential(Dense(8), ReLU,
    LayerNorm, Dense(3)): its layers are attributes with their own names."""
    def named_mlp():
        import multiparam as mp

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.Linear(4, 8)
                self.norm = nn.LayerNorm(8, eps=1e-5)
                self.head = nn.Linear(8, 3)

            def forward(self, x):
                return self.head(self.norm(torch.relu(self.encoder(x))))

        spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.LayerNorm(), mp.nn.Dense(3))
        x = np.random.default_rng(5).uniform(-1, 1, size=(2, 4)).astype(np.float32)
        return PortCase(Net(), x, spec, PORT_RULES)

    return {"named-mlp": named_mlp}
