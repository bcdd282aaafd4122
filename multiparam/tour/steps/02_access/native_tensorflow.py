net.layers[2].weights
