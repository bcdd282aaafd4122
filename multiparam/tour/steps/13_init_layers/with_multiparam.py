m.init(mp.init.xavier_uniform(), where="0.weight", seed=0)
m.init(mp.init.constant(42), where="2.weight")
print(m["0.weight"].value[0])
print(m["2.weight"].value)
