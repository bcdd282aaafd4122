[w.path for w in net.weights if w.path.endswith('kernel')]
