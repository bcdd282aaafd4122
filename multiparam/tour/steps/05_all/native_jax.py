jax.tree_util.tree_map(lambda x: x.shape, params)
