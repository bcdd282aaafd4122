shared = nn.Dense(8)
tnet = nn.Sequential([nn.Dense(8), nn.relu, shared, nn.relu, shared,
                      nn.relu, nn.Dense(1)])
t_params = tnet.init(jax.random.PRNGKey(10), X)
list(t_params['params'])   # the shared layer has one entry
