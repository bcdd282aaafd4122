import tensorflow as tf
tf.random.set_seed(0)
net = tf.keras.models.Sequential([
    tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])
X = tf.random.uniform((2, 4))
net(X).shape
