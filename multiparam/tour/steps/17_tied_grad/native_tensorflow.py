linear = tf.keras.layers.Dense(1, use_bias=False,
                               kernel_initializer=tf.keras.initializers.Constant(3))
lnet = tf.keras.models.Sequential([linear, linear])
x = tf.ones((1, 1))
with tf.GradientTape() as tape:
    y = tf.reduce_sum(lnet(x))
print(lnet.layers[0] is lnet.layers[1], len(lnet.trainable_variables))
print(y, tape.gradient(y, lnet.trainable_variables))
