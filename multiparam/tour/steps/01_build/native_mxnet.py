import mxnet as mx
from mxnet import init, np, npx
from mxnet.gluon import nn
npx.set_np()
mx.random.seed(0)
net = nn.Sequential()
net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(1))
net.initialize()  # Use the default initialization method
X = np.random.uniform(size=(2, 4))
net(X).shape
