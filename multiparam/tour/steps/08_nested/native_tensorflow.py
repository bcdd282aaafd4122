def block1():
    return tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.ReLU(),
                                tf.keras.layers.Dense(4), tf.keras.layers.ReLU()])
def block2():
    return tf.keras.Sequential([block1() for i in range(4)])
rgnet = tf.keras.Sequential([block2(), tf.keras.layers.Dense(1)])
rgnet(X)
rgnet.layers[0].layers[1].layers[0].bias
