class MyModel(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.weight1 = self.add_weight(shape=(20, 20), initializer='random_uniform',
                                       name='weight1')   # registered
        self.weight2 = tf.random.uniform((20, 20))        # a plain tensor: not
    def call(self, x):
        return x @ self.weight1 + x @ self.weight2
mine, x20 = MyModel(), tf.ones((1, 20))
[w.path for w in mine.weights]
