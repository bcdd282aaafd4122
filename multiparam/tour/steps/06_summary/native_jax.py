sum(x.size for x in jax.tree_util.tree_leaves(params))
