[(w.path, w.shape) for w in net.weights]
