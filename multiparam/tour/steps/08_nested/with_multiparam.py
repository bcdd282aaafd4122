rg = mp.wrap(rgnet, sample_input=X)
print(rg[0][1][0].path, rg[0][1][0].params()['bias'].value)
len(rg.named_parameters()), rg.num_parameters()
