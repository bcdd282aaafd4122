import multiparam as mp
m = mp.wrap(net, variables=params)   # Flax keeps parameters outside the model
m
