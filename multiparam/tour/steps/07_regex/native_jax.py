from flax import traverse_util
[k for k in traverse_util.flatten_dict(params['params'], sep='/') if k.endswith('kernel')]
