hasattr(params['params']['layers_2']['kernel'], 'grad')
