mm = mp.wrap(mine, sample_input=x20)
{name: p.shape for name, p in mm.named_parameters().items()}
