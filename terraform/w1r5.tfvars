# leader-follower, W=1 R=5: writes are acknowledged by the leader alone; every read asks all five copies.
config = "w1r5"
delays = "paper"
