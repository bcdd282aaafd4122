def block1():
    return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(4), nn.relu])
def block2():
    return nn.Sequential([block1() for i in range(4)])
rgnet = nn.Sequential([block2(), nn.Dense(1)])
rg_params = rgnet.init(jax.random.PRNGKey(2), X)
rg_params['params']['layers_0']['layers_1']['layers_0']['bias']
