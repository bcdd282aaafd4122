tm = mp.wrap(tnet, variables=t_params)
print(tm.ties())
tm["2.weight"][0, 0] = 100
print(tm["2.weight"] is tm["4.weight"], tm["4.weight"].value[0, 0])
