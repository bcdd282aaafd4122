net.collect_params('.*weight')
