sum(p.numel() for p in net.parameters())
