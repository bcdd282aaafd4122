def my_init(module):
    if type(module) == nn.Linear:
        print('Init', *[(name, param.shape) for name, param in module.named_parameters()][0])
        nn.init.uniform_(module.weight, -10, 10)
        module.weight.data *= module.weight.data.abs() >= 5
net.apply(my_init)
net[0].weight[:2]
