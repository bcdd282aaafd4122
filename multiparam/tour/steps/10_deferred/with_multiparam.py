lazy = mp.wrap(lazy_mlp())   # a fresh one, no sample input: input sizes unknown
print(lazy.shapes())
lazy(X)
lazy.shapes()
