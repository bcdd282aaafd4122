p = m["2.bias"]
type(p.native).__name__, p.value
