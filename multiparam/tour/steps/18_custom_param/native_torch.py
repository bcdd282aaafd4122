class MyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight1 = nn.Parameter(torch.rand(20, 20))   # registered
        self.weight2 = torch.rand(20, 20)                 # a plain tensor: not
    def forward(self, x):
        return x @ self.weight1 + x @ self.weight2
mine, x20 = MyModel(), torch.ones(1, 20)
[name for name, _ in mine.named_parameters()]
