def lazy_mlp():
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
lazy_net = lazy_mlp()
print(lazy_net[0].weight)
lazy_net(X)
lazy_net[0].weight.shape
