dense = nn.Dense(256)   # Flax's own default
dense.init(jax.random.PRNGKey(13), jax.numpy.ones((1, 64)))['params']['kernel'].std()
