net[2].state_dict()
