class MyModel(nn.Module):
    @nn.compact
    def __call__(self, x):
        weight1 = self.param('weight1', nn.initializers.uniform(1.0), (20, 20))
        weight2 = jax.random.uniform(jax.random.PRNGKey(0), (20, 20))  # not a param
        return x @ weight1 + x @ weight2
mine, x20 = MyModel(), jax.numpy.ones((1, 20))
mine_params = mine.init(jax.random.PRNGKey(12), x20)
list(mine_params['params'])
