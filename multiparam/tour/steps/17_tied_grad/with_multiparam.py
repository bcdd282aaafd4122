lm = mp.wrap(lnet, sample_input=x)
lm.init(mp.init.constant(3))
print(lm.ties(), lm["0.weight"] is lm["1.weight"])
print(float(mp.param.as_numpy(lm(x)).sum()), lm.grad(x))
