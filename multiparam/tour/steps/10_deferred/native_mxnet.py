def lazy_mlp():
    net = nn.Sequential()
    net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(1))
    net.initialize()   # deferred: input sizes are not known yet
    return net
lazy_net = lazy_mlp()
print(lazy_net.collect_params())
lazy_net(X)
lazy_net.collect_params()
