variable "config" {
  description = "Replication config: w5r1 (leader-follower W=5 R=1), w1r5 (leader-follower W=1 R=5), w3r3 (leader-follower W=3 R=3) or leaderless (leaderless W=5 R=1)."
  type        = string
  default     = "w5r1"

  validation {
    condition     = contains(["w5r1", "w1r5", "w3r3", "leaderless"], var.config)
    error_message = "The config must be one of w5r1, w1r5, w3r3, leaderless."
  }
}

variable "delays" {
  description = "Delay profile of every node (KVDB_DELAYS): paper, none, paper*F (e.g. paper*0.1) or gap=D,apply=D,read=D[,sequential=BOOL]."
  type        = string
  default     = "paper"

  validation {
    condition     = can(regex("^[A-Za-z0-9*.,=_]+$", var.delays))
    error_message = "The delays must be a delay profile such as paper, none or paper*0.1."
  }
}

variable "base_port" {
  description = "Host port of node1; node2..node5 get the next four ports. Ports are published on host_ip only."
  type        = number
  default     = 8080

  validation {
    condition     = var.base_port >= 1024 && var.base_port <= 65531 && floor(var.base_port) == var.base_port
    error_message = "The base_port must be an integer in 1024..65531 (five consecutive ports are used)."
  }
}

variable "resp_base_port" {
  description = "Host port of node1's Redis-protocol (RESP) listener; node2..node5 get the next four ports, published on host_ip only, as base_port numbers the HTTP ports. 0: no RESP listener."
  type        = number
  default     = 6379

  validation {
    condition     = var.resp_base_port == 0 || (var.resp_base_port >= 1024 && var.resp_base_port <= 65531 && floor(var.resp_base_port) == var.resp_base_port)
    error_message = "The resp_base_port must be 0 (no RESP) or an integer in 1024..65531 (five consecutive ports are used)."
  }
}

variable "host_ip" {
  description = "Host address the node ports are published on (loopback by default: the cluster is not reachable from other machines)."
  type        = string
  default     = "127.0.0.1"

  validation {
    condition     = can(cidrhost("${var.host_ip}/32", 0))
    error_message = "The host_ip must be an IPv4 address."
  }
}

variable "image" {
  description = "Container image (tag) to run; built from source_dir with `make image` when build_image is true."
  type        = string
  default     = "kvdb:latest"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/:-]*$", var.image))
    error_message = "The image must be an image reference such as kvdb:latest."
  }
}

variable "build_image" {
  description = "Build the image (make image) during apply. Set false to use an image that already exists."
  type        = bool
  default     = true
}

variable "source_dir" {
  description = "Repository root to build the image from (default: the directory above this module)."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Prefix of the network and container names (<prefix>-net, <prefix>-node1..5) and value of the kvdb.project label. Use different prefixes (and base ports) to run several clusters side by side."
  type        = string
  default     = "kvdb"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{0,40}$", var.name_prefix))
    error_message = "The name_prefix must be 1-41 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "labels" {
  description = "Extra labels on every container and on the network (app=kvdb, kvdb.project and kvdb.config are always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[A-Za-z0-9._/-]+$", k)) && can(regex("^[A-Za-z0-9._/:-]*$", v))])
    error_message = "Label keys and values may only use letters, digits and . _ / - (values also :)."
  }
}

variable "cluster_token" {
  description = "Shared secret for /internal/ and PUT /config (KVDB_CLUSTER_TOKEN). Empty: a random token is generated once and kept in the state (output cluster_token); the nodes need one, since without it they answer peers on loopback only."
  type        = string
  default     = ""
  sensitive   = true
}

variable "request_timeout" {
  description = "Bound on one client request, coordination included (KVDB_REQUEST_TIMEOUT)."
  type        = string
  default     = "5s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.request_timeout))
    error_message = "The request_timeout must be a Go duration such as 500ms, 2s or 1m."
  }
}

variable "peer_timeout" {
  description = "Bound on one node-to-node message (KVDB_PEER_TIMEOUT)."
  type        = string
  default     = "2s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.peer_timeout))
    error_message = "The peer_timeout must be a Go duration such as 500ms, 2s or 1m."
  }
}

variable "retry_for" {
  description = "How long background replication retries a failed peer (KVDB_RETRY_FOR)."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.retry_for))
    error_message = "The retry_for must be a Go duration such as 500ms, 2s or 1m."
  }
}

variable "public_host" {
  description = "Host name or IPv4 address clients use to reach the published ports: the node URLs in the outputs, the URL a follower redirects a write to (307) when that node leads (KVDB_REDIRECT_URLS) and the RESP address its READONLY answer names (KVDB_RESP_PEERS). Empty: host_ip (127.0.0.1 when host_ip is 0.0.0.0)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]*$", var.public_host))
    error_message = "The public_host must be a host name or an IPv4 address."
  }
}

# Leader-follower failover (raft, package consensus). The defaults are the
# node's own (kvdb serve -h): a dead leader is replaced and writes are
# accepted again within about 2 s. Leaderless configs ignore them.

variable "election_heartbeat" {
  description = "Leader-follower: a follower that hears nothing from the leader for this long (randomized to 1-2x) starts an election; the leader heartbeats ten times as often (KVDB_ELECTION_HEARTBEAT). Lower: faster failover, more spurious elections on a busy machine."
  type        = string
  default     = "500ms"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.election_heartbeat))
    error_message = "The election_heartbeat must be a Go duration such as 500ms or 1s."
  }
}

variable "election_timeout" {
  description = "Leader-follower: how long a candidate waits for votes before it tries again, randomized to 1-2x; at least election_heartbeat (KVDB_ELECTION_TIMEOUT)."
  type        = string
  default     = "500ms"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.election_timeout))
    error_message = "The election_timeout must be a Go duration such as 500ms or 1s."
  }
}

variable "leader_lease" {
  description = "Leader-follower: a leader that reaches no majority for this long steps down and stops acknowledging writes; at most election_heartbeat (KVDB_LEADER_LEASE)."
  type        = string
  default     = "250ms"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.leader_lease))
    error_message = "The leader_lease must be a Go duration such as 250ms."
  }
}

variable "leader_catchup_wait" {
  description = "Leader-follower: how long a newly elected leader tries to copy N-W+1 nodes (itself included) before it accepts writes anyway, reporting possible loss of acknowledged writes in /health and /metrics (KVDB_LEADER_CATCHUP_WAIT). Only W=1 with the old leader dead (w1r5) ever waits this long."
  type        = string
  default     = "500ms"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.leader_catchup_wait))
    error_message = "The leader_catchup_wait must be a Go duration such as 1s."
  }
}

variable "log_level" {
  description = "Node log level: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "health_interval" {
  description = "Interval of the container health check (kvdb healthcheck)."
  type        = string
  default     = "2s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.health_interval))
    error_message = "The health_interval must be a Go duration such as 500ms, 2s or 1m."
  }
}

variable "ready_timeout" {
  description = "Seconds apply waits for all five containers to report healthy before it fails."
  type        = number
  default     = 90
}

variable "extra_env" {
  description = "More KVDB_* settings for every node, e.g. { KVDB_READ_REPAIR = \"false\" } (see kvdb serve -h)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.extra_env : can(regex("^KVDB_[A-Z0-9_]+$", k))])
    error_message = "The extra_env keys must be KVDB_* environment variable names."
  }
}
