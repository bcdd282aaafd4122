m.init(mp.init.constant(1), where=mp.nn.Dense)
print(m["0.weight"].value[0], m["0.bias"].value[0])
