output "config" {
  description = "The replication config deployed, with its mode and quorums."
  value = {
    name   = var.config
    mode   = local.preset.mode
    w      = local.preset.w
    r      = local.preset.r
    n      = length(local.node_ids)
    delays = var.delays
  }
}

output "node_urls" {
  description = "Published base URL of every node, node1..node5 in order."
  value       = [for id in local.node_ids : local.nodes[id].url]
  depends_on  = [terraform_data.ready]
}

output "nodes" {
  description = "Published base URL by node ID."
  value       = { for id in local.node_ids : id => local.nodes[id].url }
  depends_on  = [terraform_data.ready]
}

output "leader_url" {
  description = "Published URL of the first leader in leader-follower configs (node1, which founds the cluster); null in leaderless. After a failover another node leads: every node's /health names it (leader), and followers redirect writes (307) to its published URL."
  value       = local.leader_url
  depends_on  = [terraform_data.ready]
}

output "write_url" {
  description = "Where a client sends writes: node1 (the first leader in leader-follower; any node will do, followers redirect writes to whichever node leads; any node coordinates in leaderless)."
  value       = local.leader_follower ? local.leader_url : local.nodes["node1"].url
  depends_on  = [terraform_data.ready]
}

output "redirect_urls" {
  description = "KVDB_REDIRECT_URLS given to the leader-follower nodes: each member's published URL, where followers send writes when it leads; null in leaderless."
  value       = local.leader_follower ? local.redirect_urls : null
}

output "network" {
  description = "The Docker network the nodes share."
  value       = terraform_data.network.output.name
}

output "containers" {
  description = "Container name by node ID."
  value       = { for id in local.node_ids : id => local.nodes[id].container }
}

output "cluster_token" {
  description = "The token every node requires on /internal/ and PUT /config (var.cluster_token, or the generated one): curl -H \"Authorization: Bearer $(terraform output -raw cluster_token)\" ..."
  value       = local.cluster_token
  sensitive   = true
}

output "resp_addrs" {
  description = "Published Redis-protocol (RESP) address (host:port) of every node, node1..node5 in order; null when resp_base_port = 0."
  value       = local.resp ? [for id in local.node_ids : local.nodes[id].resp_addr] : null
  depends_on  = [terraform_data.ready]
}

output "resp_peers" {
  description = "KVDB_RESP_PEERS given to every node: each member's published RESP address, named in a follower's READONLY answer when that member leads; null when resp_base_port = 0."
  value       = local.resp ? local.resp_peers : null
}

output "redis_cli" {
  description = "A ready-to-paste redis-cli command for node1 (the first leader in leader-follower configs; any node coordinates in leaderless); append a command (set k v, get k, info replication). null when resp_base_port = 0."
  value       = local.resp ? "redis-cli -h ${local.public_host} -p ${local.nodes["node1"].resp_port}" : null
  depends_on  = [terraform_data.ready]
}
