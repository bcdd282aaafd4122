def my_init(shape, rng, name):   # any fn(shape, rng[, name]) -> array
    print('Init', name, shape)
    data = rng.uniform(-10, 10, shape)
    return data * (abs(data) >= 5)
m.init(my_init, where=mp.nn.Dense, seed=0)
print(m["0.weight"].value[:2])
