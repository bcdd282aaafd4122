params['params']['layers_2']
