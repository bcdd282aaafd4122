kernel = params['params']['layers_0']['kernel']   # JAX arrays are immutable:
params['params']['layers_0']['kernel'] = (kernel + 1).at[0, 0].set(42)   # a new one
params['params']['layers_0']['kernel'][:, 0]
