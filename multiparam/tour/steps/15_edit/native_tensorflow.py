kernel = net.layers[0].kernel
kernel.assign(kernel + 1)
kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [42.0]))
kernel[:, 0]
