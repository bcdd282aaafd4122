shared = nn.LazyLinear(8)
tnet = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared,
                     nn.ReLU(), nn.LazyLinear(1))
tnet(X)
print(tnet[2].weight.data[0] == tnet[4].weight.data[0])
tnet[2].weight.data[0, 0] = 100
print(tnet[2].weight.data[0] == tnet[4].weight.data[0])
