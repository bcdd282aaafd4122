rg = mp.wrap(rgnet, variables=rg_params)
print(rg[0][1][0].path, rg[0][1][0].params()['bias'].value)
len(rg.named_parameters()), rg.num_parameters()
