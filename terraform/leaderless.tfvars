# leaderless, W=5 R=1: any node coordinates; versions by Lamport clock.
config = "leaderless"
delays = "paper"
