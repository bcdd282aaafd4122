k0, k2 = net.layers[0].kernel, net.layers[2].kernel
k0.assign(tf.keras.initializers.GlorotUniform()(k0.shape))
k2.assign(tf.keras.initializers.Constant(42)(k2.shape))
print(k0[:, 0])
print(k2)
