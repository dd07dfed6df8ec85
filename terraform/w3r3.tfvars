# leader-follower, W=3 R=3: majority quorums, R+W>N.
config = "w3r3"
delays = "paper"
