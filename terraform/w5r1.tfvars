# leader-follower, W=5 R=1: every write waits for all five copies; reads are local to the node asked.
config = "w5r1"
delays = "paper"
