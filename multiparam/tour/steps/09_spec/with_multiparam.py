spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))
same = mp.wrap(spec, sample_input=X)   # built for the current backend
[(name, p.native_name, p.shape) for name, p in same.named_parameters().items()]
