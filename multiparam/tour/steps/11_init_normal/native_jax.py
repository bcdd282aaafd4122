net_n = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.normal(0.01),
                                bias_init=nn.initializers.zeros),
                       nn.relu, nn.Dense(1)])
params_n = net_n.init(jax.random.PRNGKey(6), X)
params_n['params']['layers_0']['kernel'][:, 0], params_n['params']['layers_0']['bias'][0]
