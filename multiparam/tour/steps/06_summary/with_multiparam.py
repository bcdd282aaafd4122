print(m.summary())
