m[2].params()
