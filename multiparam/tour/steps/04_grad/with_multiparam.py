m["2.weight"].grad is None
