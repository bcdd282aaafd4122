net[2].weight.grad()
