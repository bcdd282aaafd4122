hasattr(net.layers[2].kernel, 'grad')
