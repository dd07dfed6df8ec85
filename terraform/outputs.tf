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
  description = "Published URL of the leader in leader-follower configs (clients send writes here; followers redirect them here with 307); null in leaderless."
  value       = local.leader_url
  depends_on  = [terraform_data.ready]
}

output "write_url" {
  description = "Where a client sends writes: the leader in leader-follower, node1 (any node would do) in leaderless."
  value       = local.leader_follower ? local.leader_url : local.nodes["node1"].url
  depends_on  = [terraform_data.ready]
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
