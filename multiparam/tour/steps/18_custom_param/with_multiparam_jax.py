mm = mp.wrap(mine, variables=mine_params)
{name: p.shape for name, p in mm.named_parameters().items()}
