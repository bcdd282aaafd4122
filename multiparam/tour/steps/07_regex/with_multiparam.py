list(m.named_parameters('.*weight'))
