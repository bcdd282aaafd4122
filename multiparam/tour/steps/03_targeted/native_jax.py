bias = params['params']['layers_2']['bias']
type(bias), bias
