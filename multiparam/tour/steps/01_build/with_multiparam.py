import multiparam as mp
m = mp.wrap(net, sample_input=X)
m
