import numpy
shared = mp.nn.Dense(8)
ex = mp.wrap(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), shared, mp.nn.ReLU(), shared,
                              mp.nn.ReLU(), mp.nn.Dense(1)), sample_input=X)
ex.init(mp.init.xavier_uniform(), seed=0)   # the same start on every backend
xs = numpy.random.default_rng(0).uniform(-1, 1, (32, 4)).astype('float32')
ys = numpy.sin(xs).sum(axis=1, keepdims=True)
for step in range(41):
    grads = ex.grad(xs, loss='mse', target=ys)
    if step % 40 == 0:
        print(f'step {step}: |param| / |grad| per layer')
        for name, p in ex.named_parameters().items():
            norms = numpy.linalg.norm(p.value), numpy.linalg.norm(grads[name])
            print(f'  {name:9s} {norms[0]:7.3f} {norms[1]:7.3f}')
    for name, p in ex.named_parameters().items():
        p.set(p.value - 0.1 * grads[name])
ex.ties(), ex['2.weight'] is ex['4.weight']
