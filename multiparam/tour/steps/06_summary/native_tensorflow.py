net.count_params()
