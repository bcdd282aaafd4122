def block1():
    net = nn.Sequential()
    net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(4), nn.Activation('relu'))
    return net
def block2():
    net = nn.Sequential()
    for i in range(4):
        net.add(block1())
    return net
rgnet = nn.Sequential()
rgnet.add(block2(), nn.Dense(1))
rgnet.initialize()
rgnet(X)
rgnet[0][1][0].bias.data()
