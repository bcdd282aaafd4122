net_x = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.xavier_uniform()),
                       nn.relu, nn.Dense(1, kernel_init=nn.initializers.constant(42))])
params_x = net_x.init(jax.random.PRNGKey(8), X)
print(params_x['params']['layers_0']['kernel'][:, 0])
print(params_x['params']['layers_2']['kernel'])
