w = m["0.weight"]
m.init(mp.init.constant(1), where="0.weight")   # a known start, to compare
w[:] += 1
w[0, 0] = 42
print(w.value[0])
