m.shapes()
