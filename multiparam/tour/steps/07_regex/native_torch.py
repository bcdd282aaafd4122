import re
[n for n, _ in net.named_parameters() if re.match('.*weight', n)]
