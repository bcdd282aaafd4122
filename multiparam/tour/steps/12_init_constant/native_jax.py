net_c = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.constant(1),
                                bias_init=nn.initializers.zeros),
                       nn.relu, nn.Dense(1)])
params_c = net_c.init(jax.random.PRNGKey(7), X)
params_c['params']['layers_0']['kernel'][:, 0], params_c['params']['layers_0']['bias'][0]
