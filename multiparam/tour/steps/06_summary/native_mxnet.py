sum(p.data().size for p in net.collect_params().values())
