net[2].params
