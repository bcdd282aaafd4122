for layer in net.layers:
    if isinstance(layer, tf.keras.layers.Dense):
        layer.kernel.assign(tf.keras.initializers.RandomNormal(0, 0.01)(layer.kernel.shape))
        layer.bias.assign(tf.keras.initializers.Zeros()(layer.bias.shape))
net.layers[0].kernel[:, 0], net.layers[0].bias[0]
