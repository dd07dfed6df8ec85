# A five-node kvdb cluster on the local Docker engine, driven through the
# Docker CLI by Terraform's built-in terraform_data resource (no provider has
# to be downloaded). `terraform apply` builds the image, creates a dedicated
# network and five containers with ports published on host_ip, and waits
# until every container reports healthy and, in leader-follower configs,
# until a leader accepts writes; `terraform destroy` removes the containers
# and the network. Everything created carries the label app=kvdb.
#
# Leader-follower failover: the nodes elect their leader with raft
# (hashicorp/raft), carried over each node's own HTTP port (an HTTP upgrade
# at /internal/raft, guarded by the cluster token like every /internal/
# endpoint), so no second port is opened between containers.
#
# Redis protocol: every node also serves RESP on container port 6379
# (KVDB_RESP_ADDR), published on host_ip at resp_base_port + i - 1 for node
# i, as base_port numbers the HTTP ports (resp_base_port = 0: no RESP).
# KVDB_RESP_PEERS names each member's published RESP address, so a
# follower's "-READONLY ... (leader: <id> <host:port>)" points a client
# outside Docker at whichever node leads.
# node1 founds the cluster and leads first (KVDB_LEADER=node1, KVDB_ROLE:
# the starting role); after that the election decides. Every node knows
# every member's published URL (KVDB_REDIRECT_URLS), so a follower
# redirects a write (307) to whichever node leads now, at an address a
# client outside Docker can reach. The election timings are variables
# (election_heartbeat, election_timeout, leader_lease, leader_catchup_wait).
#
# Destroy-time provisioners may only reference self, so every name they need
# is stored in the resource's input.

locals {
  presets = {
    w5r1       = { mode = "leader-follower", w = 5, r = 1 }
    w1r5       = { mode = "leader-follower", w = 1, r = 5 }
    w3r3       = { mode = "leader-follower", w = 3, r = 3 }
    leaderless = { mode = "leaderless", w = 5, r = 1 }
  }
  preset          = local.presets[var.config]
  leader_follower = local.preset.mode == "leader-follower"

  node_ids       = ["node1", "node2", "node3", "node4", "node5"]
  leader_id      = "node1" # leader-follower: the first member leads
  container_port = 8080
  # The Redis protocol's container port (KVDB_RESP_ADDR), when resp is on.
  container_resp_port = 6379
  resp                = var.resp_base_port != 0

  network = "${var.name_prefix}-net"
  # The host clients use for the published ports (URLs in the outputs and
  # in redirects): public_host, else host_ip (loopback for a wildcard).
  public_host = var.public_host != "" ? var.public_host : (var.host_ip == "0.0.0.0" ? "127.0.0.1" : var.host_ip)
  nodes = {
    for i, id in local.node_ids : id => {
      index     = i
      container = "${var.name_prefix}-${id}"
      host_port = var.base_port + i
      url       = "http://${local.public_host}:${var.base_port + i}"
      resp_port = local.resp ? var.resp_base_port + i : null
      resp_addr = local.resp ? "${local.public_host}:${var.resp_base_port + i}" : null
    }
  }
  # Peers reach each other by container name on the dedicated network.
  peers      = join(",", [for id in local.node_ids : "${id}=http://${local.nodes[id].container}:${local.container_port}"])
  leader_url = local.leader_follower ? local.nodes[local.leader_id].url : null
  # Where a follower sends clients (307) when that member leads: its
  # published URL, not the container name only the Docker network resolves.
  redirect_urls = join(",", [for id in local.node_ids : "${id}=${local.nodes[id].url}"])
  # KVDB_RESP_PEERS: each member's published RESP address, named in a
  # follower's READONLY answer when that member leads (INFO replication's
  # kvdb_leader_addr too).
  resp_peers = local.resp ? join(",", [for id in local.node_ids : "${id}=${local.nodes[id].resp_addr}"]) : ""

  labels = merge(var.labels, {
    "app"          = "kvdb"
    "kvdb.project" = var.name_prefix
    "kvdb.config"  = var.config
  })
  label_args = join(" ", [for k in sort(keys(local.labels)) : "--label '${k}=${local.labels[k]}'"])

  source_dir = var.source_dir != "" ? var.source_dir : abspath("${path.module}/..")
  # Rebuild the image (and replace the containers) when the source changes.
  source_hash = var.build_image ? sha1(join(",", concat(
    [for f in sort(fileset(local.source_dir, "{cmd,internal}/**/*.go")) : filesha1("${local.source_dir}/${f}")],
    [for f in ["go.mod", "go.sum", "Dockerfile"] : filesha1("${local.source_dir}/${f}")],
  ))) : ""
}

# Secure by default: without var.cluster_token the nodes share a random
# token generated once (two random UUIDs, crypto/rand, about 244 bits) and
# kept in the state, so re-applying does not replace the containers. The
# nodes talk over the Docker network, not loopback, so they could not
# replicate in protected mode without one. `terraform output -raw
# cluster_token` shows it (PUT /config needs it).
resource "terraform_data" "token" {
  count = var.cluster_token == "" ? 1 : 0
  input = replace("${uuid()}${uuid()}", "-", "")

  lifecycle {
    ignore_changes = [input]
  }
}

locals {
  cluster_token = sensitive(var.cluster_token != "" ? var.cluster_token : terraform_data.token[0].output)
}

resource "terraform_data" "image" {
  count = var.build_image ? 1 : 0

  triggers_replace = [var.image, local.source_hash]
  input            = { image = var.image, source_dir = local.source_dir }

  provisioner "local-exec" {
    # The image is left in place on destroy: it is a build artefact, not
    # part of the running cluster.
    command = "make -C '${self.input.source_dir}' image IMAGE='${self.input.image}'"
  }
}

resource "terraform_data" "network" {
  triggers_replace = [local.network, local.label_args]
  input            = { name = local.network, label_args = local.label_args }

  provisioner "local-exec" {
    command = "docker network inspect '${self.input.name}' >/dev/null 2>&1 || docker network create ${self.input.label_args} '${self.input.name}'"
  }

  provisioner "local-exec" {
    when = destroy
    # Fails (and keeps the state) if something is still attached.
    command = "if docker network inspect '${self.input.name}' >/dev/null 2>&1; then docker network rm '${self.input.name}'; fi"
  }
}

resource "terraform_data" "node" {
  for_each = local.nodes

  triggers_replace = {
    image           = var.image
    source_hash     = local.source_hash
    network         = terraform_data.network.output.name
    config          = var.config
    delays          = var.delays
    peers           = local.peers
    port            = "${var.host_ip}:${each.value.host_port}"
    resp_port       = local.resp ? "${var.host_ip}:${each.value.resp_port}" : ""
    resp_peers      = local.resp_peers
    redirect_urls   = local.redirect_urls
    labels          = local.label_args
    token           = local.cluster_token
    request_timeout = var.request_timeout
    peer_timeout    = var.peer_timeout
    retry_for       = var.retry_for
    log_level       = var.log_level
    health_interval = var.health_interval
    election        = join(",", [var.election_heartbeat, var.election_timeout, var.leader_lease, var.leader_catchup_wait])
    extra_env       = jsonencode(var.extra_env)
  }
  input = { container = each.value.container, url = each.value.url }

  depends_on = [terraform_data.image]

  lifecycle {
    precondition {
      condition     = !local.resp || var.resp_base_port >= var.base_port + length(local.node_ids) || var.resp_base_port + length(local.node_ids) <= var.base_port
      error_message = "The RESP ports (resp_base_port ${var.resp_base_port}..+4) overlap the HTTP ports (base_port ${var.base_port}..+4): choose ranges five ports apart, or resp_base_port = 0 for no RESP."
    }
  }

  provisioner "local-exec" {
    # Values travel as environment variables (docker run -e NAME copies the
    # caller's value), so no secret or odd character ends up in the command.
    # An empty value is the node's default (kvdb serve ignores empty KVDB_*
    # variables): leaderless nodes get no leader, role or election settings.
    environment = merge(var.extra_env, {
      KVDB_ID                  = each.key
      KVDB_LISTEN              = ":${local.container_port}"
      KVDB_RESP_ADDR           = local.resp ? ":${local.container_resp_port}" : ""
      KVDB_RESP_PEERS          = local.resp_peers
      KVDB_MODE                = local.preset.mode
      KVDB_PEERS               = local.peers
      KVDB_LEADER              = local.leader_follower ? local.leader_id : ""
      KVDB_ROLE                = local.leader_follower ? (each.key == local.leader_id ? "leader" : "follower") : ""
      KVDB_REDIRECT_URLS       = local.leader_follower ? local.redirect_urls : ""
      KVDB_ELECTION_HEARTBEAT  = local.leader_follower ? var.election_heartbeat : ""
      KVDB_ELECTION_TIMEOUT    = local.leader_follower ? var.election_timeout : ""
      KVDB_LEADER_LEASE        = local.leader_follower ? var.leader_lease : ""
      KVDB_LEADER_CATCHUP_WAIT = local.leader_follower ? var.leader_catchup_wait : ""
      KVDB_W                   = tostring(local.preset.w)
      KVDB_R                   = tostring(local.preset.r)
      KVDB_DELAYS              = var.delays
      KVDB_REQUEST_TIMEOUT     = var.request_timeout
      KVDB_PEER_TIMEOUT        = var.peer_timeout
      KVDB_RETRY_FOR           = var.retry_for
      KVDB_CLUSTER_TOKEN       = local.cluster_token
      KVDB_LOG_LEVEL           = var.log_level
    })
    command = join(" ", [
      "docker rm -f '${each.value.container}' >/dev/null 2>&1 || true;",
      "docker run -d --name '${each.value.container}' --hostname '${each.value.container}'",
      "--network '${terraform_data.network.output.name}' ${local.label_args} --label 'kvdb.node=${each.key}'",
      "-p '${var.host_ip}:${each.value.host_port}:${local.container_port}'",
      local.resp ? "-p '${var.host_ip}:${each.value.resp_port}:${local.container_resp_port}'" : "",
      "--health-interval '${var.health_interval}' --health-start-period 30s",
      "-e KVDB_ID -e KVDB_LISTEN -e KVDB_RESP_ADDR -e KVDB_RESP_PEERS -e KVDB_MODE -e KVDB_PEERS -e KVDB_LEADER -e KVDB_ROLE -e KVDB_REDIRECT_URLS",
      "-e KVDB_ELECTION_HEARTBEAT -e KVDB_ELECTION_TIMEOUT -e KVDB_LEADER_LEASE -e KVDB_LEADER_CATCHUP_WAIT",
      "-e KVDB_W -e KVDB_R -e KVDB_DELAYS -e KVDB_REQUEST_TIMEOUT -e KVDB_PEER_TIMEOUT -e KVDB_RETRY_FOR",
      "-e KVDB_CLUSTER_TOKEN -e KVDB_LOG_LEVEL ${join(" ", [for k in sort(keys(var.extra_env)) : "-e ${k}"])}",
      "'${var.image}' serve",
      # A failed run can leave a created container behind, and Terraform
      # does not run destroy provisioners of a tainted resource: remove it.
      "|| { rc=$?; docker rm -f '${each.value.container}' >/dev/null 2>&1; exit $rc; }",
    ])
  }

  provisioner "local-exec" {
    when    = destroy
    command = "docker rm -f -v '${self.input.container}' >/dev/null 2>&1 || true; ! docker container inspect '${self.input.container}' >/dev/null 2>&1"
  }
}

# Apply finishes only once every node reports healthy and, in
# leader-follower configs, a node reports that it leads and accepts writes
# (role leader, not catching up) — bounded by ready_timeout; on timeout it
# prints the logs of the node that is not ready. The leader check reads
# /health inside the containers (`kvdb healthcheck` prints it), so it needs
# nothing on the host but the Docker CLI.
locals {
  wait_leader = <<-EOT
    while :; do
      leader=""
      for c in ${join(" ", [for id in local.node_ids : "'${local.nodes[id].container}'"])}; do
        h=$(docker exec "$c" /kvdb healthcheck 2>/dev/null || true)
        case "$h" in
          *'"leader_catching_up":true'*) ;;
          *'"role":"leader"'*) leader="$c"; break ;;
        esac
      done
      [ -n "$leader" ] && break
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "kvdb: no node leads and accepts writes after ${var.ready_timeout}s; their /health:" >&2
        for c in ${join(" ", [for id in local.node_ids : "'${local.nodes[id].container}'"])}; do
          echo "$c: $(docker exec "$c" /kvdb healthcheck 2>&1 || true)" >&2
        done
        exit 1
      fi
      sleep 0.2
    done
    echo "kvdb: $leader leads and accepts writes"
  EOT
}

resource "terraform_data" "ready" {
  triggers_replace = [for id in local.node_ids : terraform_data.node[id].id]

  provisioner "local-exec" {
    command = <<-EOT
      deadline=$(( $(date +%s) + ${var.ready_timeout} ))
      for c in ${join(" ", [for id in local.node_ids : "'${local.nodes[id].container}'"])}; do
        while :; do
          s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || echo missing)
          [ "$s" = healthy ] && break
          if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "kvdb: $c is $s after ${var.ready_timeout}s; its last health checks and log lines:" >&2
            docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{end}}{{end}}' "$c" >&2 || true
            docker logs --tail 30 "$c" >&2 || true
            exit 1
          fi
          sleep 0.5
        done
      done
      echo "kvdb: all 5 nodes healthy (config ${var.config}, delays ${var.delays})"
      ${local.leader_follower ? local.wait_leader : ""}
    EOT
  }
}
