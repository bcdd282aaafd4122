dense = nn.Dense(256, in_units=64)   # Gluon's own default
dense.initialize()
dense.weight.data().std()
