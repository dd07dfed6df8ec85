//go:build !kvdb_node

package cli

// NodeOnlyBuild reports whether this binary is the node-only build of the
// container image (-tags kvdb_node, see nodebuild.go); false: this is the
// full kvdb with every command.
const NodeOnlyBuild = false
