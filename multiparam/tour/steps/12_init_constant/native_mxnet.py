net.initialize(init=init.Constant(1), force_reinit=True)
net[0].weight.data()[0], net[0].bias.data()[0]
