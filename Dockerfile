# kvdb container image: one static binary FROM scratch (no base image can be
# pulled on our machines, and scratch is also the smallest image).
#
# Build with `make image` (it builds the static binary first, then this):
#   CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -tags kvdb_node \
#       -o bin/kvdb-linux-amd64 ./cmd/kvdb
#   docker build --build-arg BINARY=bin/kvdb-linux-amd64 -t kvdb:latest .
#
# The image carries the node-only build of the one kvdb binary (-tags
# kvdb_node): serve, cluster, healthcheck, load and check, without the
# experiment, report and bench commands and the charting/PDF code they pull
# in (10 MB instead of 20 MB; those commands answer "not in this build").
# `make image IMAGE_TAGS=` puts the full binary in instead.
#
# Configure a node with KVDB_* environment variables (every `kvdb serve` flag
# has one: KVDB_ID, KVDB_MODE, KVDB_PEERS, KVDB_W, KVDB_R, KVDB_DELAYS, ...).
#
# Leader-follower nodes elect their leader with raft over this same HTTP
# port (an upgrade at /internal/raft): nodes talk to each other on 8080
# only. Between containers that needs KVDB_CLUSTER_TOKEN (without a token
# /internal/ answers loopback callers only); KVDB_REDIRECT_URLS=node1=http://host:port,...
# names the URL clients outside Docker reach each member at, where followers
# redirect writes (307) when it leads; KVDB_LEADER names the founding member
# (it leads first). The election timings are KVDB_ELECTION_HEARTBEAT,
# KVDB_ELECTION_TIMEOUT, KVDB_LEADER_LEASE and KVDB_LEADER_CATCHUP_WAIT.
#
# Every node also speaks the Redis protocol (RESP) on 6379
# (KVDB_RESP_ADDR=:6379 by default; -e KVDB_RESP_ADDR= turns it off).
# KVDB_RESP_PEERS=node1=host:port,... names the RESP address clients outside
# Docker reach each member at (its published port): a follower's
# "-READONLY ... (leader: <id> <addr>)" answer to a write names the leader's.
FROM scratch

ARG BINARY=bin/kvdb-linux-amd64
COPY --chown=0:0 ${BINARY} /kvdb
# A directory the non-root user may write, for the write-ahead log
# (KVDB_DATA_DIR=/data; mount a volume there to keep it beyond the container).
COPY --chown=65532:65532 bin/image-data /data

LABEL org.opencontainers.image.title="kvdb" \
      org.opencontainers.image.description="replicated key-value database (leader-follower and leaderless)" \
      org.opencontainers.image.source="https://github.com/kvdb/kvdb"

# Defaults for one node; override any of them with -e.
ENV KVDB_LISTEN=:8080 \
    KVDB_RESP_ADDR=:6379 \
    KVDB_LOG_LEVEL=info

# HTTP API (and raft between nodes), Redis protocol.
EXPOSE 8080 6379

# Non-root. scratch has no /etc/passwd, so the user is numeric.
USER 65532:65532

# The health check goes through kvdb itself (there is no shell or curl here);
# it reads KVDB_LISTEN to find the port. It passes when GET /health answers
# 200: a leader (also one still catching up after its election) and a
# follower (also while no leader is known, during an election) are healthy;
# a node that has just started is not until it has copied the current state
# (503 catching_up). Restarting a node would not end an election sooner.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/kvdb", "healthcheck"]

ENTRYPOINT ["/kvdb"]
CMD ["serve"]
