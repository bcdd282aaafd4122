shared = nn.Dense(8)
tnet = nn.Sequential()
tnet.add(nn.Dense(8), nn.Activation('relu'), shared, nn.Activation('relu'),
         nn.Dense(8, params=shared.params), nn.Activation('relu'), nn.Dense(1))
tnet.initialize()
tnet(X)
print(tnet[2].weight.data()[0] == tnet[4].weight.data()[0])
tnet[2].weight.data()[0, 0] = 100
print(tnet[2].weight.data()[0] == tnet[4].weight.data()[0])
