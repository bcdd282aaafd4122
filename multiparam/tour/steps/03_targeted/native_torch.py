type(net[2].bias), net[2].bias.data
