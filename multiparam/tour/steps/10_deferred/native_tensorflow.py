def lazy_mlp():
    return tf.keras.models.Sequential([
        tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])
lazy_net = lazy_mlp()
print(lazy_net.weights)
lazy_net(X)
[w.shape for w in lazy_net.weights]
