net[0].weight.initialize(init=init.Xavier(), force_reinit=True)
net[2].weight.initialize(init=init.Constant(42), force_reinit=True)
print(net[0].weight.data()[0])
print(net[2].weight.data())
