def lazy_mlp():
    return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])
lazy_net = lazy_mlp()
print(lazy_net.layers[0].features)   # no input size anywhere: init infers it
lazy_params = lazy_net.init(jax.random.PRNGKey(5), X)
jax.tree_util.tree_map(lambda x: x.shape, lazy_params)
