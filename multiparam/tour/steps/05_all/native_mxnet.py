net.collect_params()
