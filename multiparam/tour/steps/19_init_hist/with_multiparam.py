import numpy
big = mp.wrap(mp.nn.Sequential(mp.nn.Dense(256)), sample_input=numpy.ones((1, 64), 'float32'))
hist = {}
for name, initializer, r in [('framework default', mp.init.framework_default(), 0.3),
                             ('normal(0, 0.01)', mp.init.normal(0, 0.01), 0.04),
                             ('xavier_uniform()', mp.init.xavier_uniform(), 0.3),
                             ('my_init (custom)', my_init, 10)]:
    big.init(initializer, where='0.weight', seed=1, mode='native')
    w = big['0.weight'].value
    hist[name] = [r, numpy.histogram(w, bins=40, range=(-r, r))[0].tolist()]
    print(f'{name:18s} mean {w.mean():+.4f}  std {w.std():.4f}')
