shared = tf.keras.layers.Dense(8)
tnet = tf.keras.models.Sequential([
    tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), shared, tf.keras.layers.ReLU(),
    shared, tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])
tnet(X)
print(len(tnet.layers), len(tnet.weights), tnet.layers[2] is tnet.layers[4])
net_k = tnet.layers[2].kernel
net_k.assign(tf.tensor_scatter_nd_update(net_k, [[0, 0]], [100.0]))
print(tnet.layers[4].kernel[0, 0])
