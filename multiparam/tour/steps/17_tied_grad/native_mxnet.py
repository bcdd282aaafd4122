from mxnet import autograd
linear = nn.Dense(1, use_bias=False)
lnet = nn.Sequential()
lnet.add(linear, nn.Dense(1, use_bias=False, params=linear.params))
lnet.initialize(init.Constant(3))
x = np.ones((1, 1))
with autograd.record():
    y = lnet(x).sum()
y.backward()
print(lnet[0].weight is lnet[1].weight)
print(y, lnet[0].weight.grad())
