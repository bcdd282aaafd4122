[(name, param.shape) for name, param in net.named_parameters()]
