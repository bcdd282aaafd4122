nn.Linear(64, 256).weight.std()   # torch's own default
