dense = tf.keras.layers.Dense(256)   # Keras' own default
dense.build((1, 64))
tf.math.reduce_std(dense.kernel)
