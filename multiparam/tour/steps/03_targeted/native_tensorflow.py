type(net.layers[2].weights[1]), tf.convert_to_tensor(net.layers[2].weights[1])
