import jax
from flax import linen as nn
net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])
X = jax.random.uniform(jax.random.PRNGKey(0), (2, 4))
params = net.init(jax.random.PRNGKey(1), X)
net.apply(params, X).shape
