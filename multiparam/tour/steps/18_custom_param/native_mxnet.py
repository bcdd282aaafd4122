from mxnet import gluon
class MyModel(gluon.Block):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.weight1 = self.params.get('weight1', shape=(20, 20))   # a Parameter
        self.weight2 = np.random.uniform(size=(20, 20))   # a plain array: not
    def forward(self, x):
        return np.dot(x, self.weight1.data()) + np.dot(x, self.weight2)
mine, x20 = MyModel(), np.ones((1, 20))
mine.initialize()
list(mine.collect_params())
