m.init(mp.init.normal(0, 0.01), where=mp.nn.Dense, seed=0)   # biases: zeros
print(m["0.weight"].value[0], m["0.bias"].value[0])
