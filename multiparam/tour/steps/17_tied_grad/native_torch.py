linear = nn.Linear(1, 1, bias=False)
lnet = nn.Sequential(linear, linear)
nn.init.constant_(linear.weight, 3)
print(id(lnet[0].weight) == id(lnet[1].weight))
x = torch.ones(1, 1)
y = lnet(x).sum()
y.backward()
print(y, lnet[0].weight.grad)   # 3 from each use: 6
