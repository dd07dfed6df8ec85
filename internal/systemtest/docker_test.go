package systemtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Labels on everything the tests create.
const (
	labelApp   = "app=kvdb"
	labelSuite = "kvdb.systemtest=1"
)

// requireDocker skips the test unless container tests are switched on and
// the Docker engine answers.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("KVDB_DOCKER_TESTS") != "1" {
		t.Skip("container tests are off: set KVDB_DOCKER_TESTS=1 (needs a Docker engine; see scripts/ci-docker.sh)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("container tests: docker is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("container tests: docker info failed, no Docker engine to test against: %v: %s", err, bytes.TrimSpace(out))
	}
}

// docker runs one docker command, bounded in time, and returns its trimmed
// combined output.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

// mustDocker is docker that fails the test on error.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// repoRoot is the module root (the tests run in internal/systemtest).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

var (
	imageOnce sync.Once
	imageName string
	imageErr  error
)

// testImage returns the image to test: KVDB_TEST_IMAGE if set, otherwise
// kvdb:latest built once per test binary with `make image`.
func testImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		if img := os.Getenv("KVDB_TEST_IMAGE"); img != "" {
			imageName = img
			_, imageErr = docker(context.Background(), "image", "inspect", img)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "make", "-s", "image", "IMAGE=kvdb:latest")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("make image: %w\n%s", err, out)
			return
		}
		imageName = "kvdb:latest"
		t.Logf("built %s with make image in %v", imageName, time.Since(start).Round(time.Millisecond))
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageName
}

// uniqueID is a short name for one test's resources: kvdbt-<test>-<random>.
func uniqueID(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(strings.TrimPrefix(t.Name(), "Test"), ""))
	if len(name) > 16 {
		name = name[:16]
	}
	return "kvdbt-" + name + "-" + hex.EncodeToString(b)
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// removeLabelled removes every container and network carrying label (a
// key=value); paused containers are unpaused first. It reports what it
// could not remove.
func removeLabelled(label string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []string
	if ids, err := docker(ctx, "ps", "-q", "--filter", "label="+label, "--filter", "status=paused"); err == nil && ids != "" {
		docker(ctx, append([]string{"unpause"}, strings.Fields(ids)...)...)
	}
	if ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+label); err != nil {
		errs = append(errs, err.Error())
	} else if ids != "" {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if ids, err := docker(ctx, "network", "ls", "-q", "--filter", "label="+label); err != nil {
		errs = append(errs, err.Error())
	} else if ids != "" {
		if _, err := docker(ctx, append([]string{"network", "rm"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleanup of %s: %s", label, strings.Join(errs, "; "))
	}
	return nil
}

// leftovers lists the containers and networks still carrying label.
func leftovers(label string) (string, error) {
	c, err := docker(context.Background(), "ps", "-a", "--filter", "label="+label, "--format", "container {{.Names}}")
	if err != nil {
		return "", err
	}
	n, err := docker(context.Background(), "network", "ls", "--filter", "label="+label, "--format", "network {{.Name}}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(c + "\n" + n), nil
}

// testSlack is the margin over a node's request timeout that a client
// allows before calling a request late: KVDB_TEST_SLACK (a Go duration),
// default 2s, so that a loaded CI machine does not fail the tests while a
// request that ignores its timeout still does.
func testSlack() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("KVDB_TEST_SLACK")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Second
}

// clusterSpec is the replication setup of a test cluster.
type clusterSpec struct {
	Mode           string // leader-follower or leaderless
	W, R           int
	Delays         string        // default none
	RequestTimeout time.Duration // default 2s
	PeerTimeout    time.Duration // default 1s
	RetryFor       time.Duration // default 60s: longer than any fault a test injects
}

func (s *clusterSpec) setDefaults() {
	if s.Delays == "" {
		s.Delays = "none"
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = 2 * time.Second
	}
	if s.PeerTimeout == 0 {
		s.PeerTimeout = time.Second
	}
	if s.RetryFor == 0 {
		s.RetryFor = 60 * time.Second
	}
}

// node is one container of a test cluster.
type node struct {
	ID        string // node1..node5
	Container string
	URL       string // published on 127.0.0.1
	port      int
}

// cluster is five kvdb containers on a network of their own.
type cluster struct {
	t       *testing.T
	spec    clusterSpec
	id      string // unique prefix and kvdb.test label value
	network string
	image   string
	token   string
	nodes   []*node
	client  *client
}

const clusterSize = 5

// startCluster starts five containers of the test image on a new network,
// waits until each answers /health through its published port, and
// registers the removal of everything in t.Cleanup (on failure too, after
// dumping the nodes' last log lines).
func startCluster(t *testing.T, spec clusterSpec) *cluster {
	t.Helper()
	spec.setDefaults()
	img := testImage(t)
	c := &cluster{t: t, spec: spec, id: uniqueID(t), image: img}
	c.network = c.id
	tok := make([]byte, 16)
	rand.Read(tok)
	c.token = hex.EncodeToString(tok)
	label := "kvdb.test=" + c.id
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				if out, err := docker(context.Background(), "logs", "--tail", "40", n.Container); err == nil {
					t.Logf("last log lines of %s:\n%s", n.Container, out)
				}
			}
		}
		if err := removeLabelled(label); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if left, err := leftovers(label); err != nil || left != "" {
			t.Errorf("cleanup left %s behind: %q %v", label, left, err)
		}
	})
	mustDocker(t, "network", "create", "--label", labelApp, "--label", labelSuite, "--label", label, c.network)

	var peers []string
	for i := range clusterSize {
		n := &node{ID: fmt.Sprintf("node%d", i+1), Container: fmt.Sprintf("%s-node%d", c.id, i+1)}
		c.nodes = append(c.nodes, n)
		peers = append(peers, fmt.Sprintf("%s=http://%s:8080", n.ID, n.Container))
	}
	env := map[string]string{
		"KVDB_MODE":            spec.Mode,
		"KVDB_PEERS":           strings.Join(peers, ","),
		"KVDB_W":               fmt.Sprint(spec.W),
		"KVDB_R":               fmt.Sprint(spec.R),
		"KVDB_DELAYS":          spec.Delays,
		"KVDB_REQUEST_TIMEOUT": spec.RequestTimeout.String(),
		"KVDB_PEER_TIMEOUT":    spec.PeerTimeout.String(),
		"KVDB_RETRY_FOR":       spec.RetryFor.String(),
		"KVDB_CLUSTER_TOKEN":   c.token,
		"KVDB_LOG_LEVEL":       "info",
	}
	if spec.Mode == "leader-follower" {
		// node1 founds the cluster and leads first; after that the
		// election (raft over each node's HTTP port, token-protected)
		// decides. Followers redirect writes to the published URL of
		// whichever node leads (KVDB_REDIRECT_URLS, set by startNodes).
		env["KVDB_LEADER"] = "node1"
	}
	c.startNodes(env)
	c.client = newClient(t, spec.RequestTimeout+testSlack()+3*time.Second)
	c.waitHealthy(30*time.Second, c.nodes...)
	if spec.Mode == "leader-follower" {
		if l := c.waitLeader(30*time.Second, c.nodes...); l.ID != "node1" {
			t.Fatalf("%s leads, want the founding member node1 to lead first", l.ID)
		}
	}
	t.Logf("cluster %s: %s W=%d R=%d delays=%s request-timeout=%v peer-timeout=%v, image %s, nodes %s",
		c.id, spec.Mode, spec.W, spec.R, spec.Delays, spec.RequestTimeout, spec.PeerTimeout, img, c.urls())
	return c
}

// startNodes starts the five containers with env (plus each node's ID and
// role), each publishing 8080 on a free loopback port. Every node is told
// every member's published URL up front (KVDB_REDIRECT_URLS), so the ports
// are chosen before any container starts; if a race took one, every
// container started so far is removed and all five start again on new
// ports.
func (c *cluster) startNodes(common map[string]string) {
	t := c.t
	t.Helper()
	var lastErr error
	for range 5 {
		used := map[int]bool{}
		var redirects []string
		for _, n := range c.nodes {
			n.port = freePort(t)
			for used[n.port] {
				n.port = freePort(t)
			}
			used[n.port] = true
			n.URL = fmt.Sprintf("http://127.0.0.1:%d", n.port)
			redirects = append(redirects, n.ID+"="+n.URL)
		}
		lastErr = nil
		for i, n := range c.nodes {
			env := maps.Clone(common)
			env["KVDB_ID"] = n.ID
			if c.spec.Mode == "leader-follower" {
				env["KVDB_REDIRECT_URLS"] = strings.Join(redirects, ",")
				env["KVDB_ROLE"] = map[bool]string{true: "leader", false: "follower"}[i == 0] // the starting role
			}
			if lastErr = c.runNode(n, env); lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			return
		}
		for _, n := range c.nodes {
			docker(context.Background(), "rm", "-f", n.Container)
		}
		if !strings.Contains(lastErr.Error(), "address already in use") && !strings.Contains(lastErr.Error(), "port is already allocated") {
			break
		}
	}
	t.Fatalf("start cluster %s: %v", c.id, lastErr)
}

// runNode starts n's container, publishing 8080 on n.port.
func (c *cluster) runNode(n *node, env map[string]string) error {
	args := []string{"run", "-d", "--name", n.Container, "--hostname", n.Container, "--network", c.network,
		"--label", labelApp, "--label", labelSuite, "--label", "kvdb.test=" + c.id, "--label", "kvdb.node=" + n.ID,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", n.port)}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "-e", k+"="+env[k])
	}
	args = append(args, c.image, "serve")
	_, err := docker(context.Background(), args...)
	return err
}

func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.URL)
	}
	return strings.Join(u, ",")
}

// waitHealthy polls GET /health on each node until it answers 200 (a node
// that is still catching up answers 503) and returns how long that took.
func (c *cluster) waitHealthy(timeout time.Duration, nodes ...*node) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for _, n := range nodes {
		for {
			r := c.client.do(http.MethodGet, n.URL+"/health", nil)
			if r.Err == nil && r.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s (%s) not healthy after %v: status %d err %v", n.ID, n.URL, timeout, r.Status, r.Err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start)
}

func (c *cluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// others returns the nodes except the given IDs.
func (c *cluster) others(except ...string) []*node {
	var out []*node
	for _, n := range c.nodes {
		skip := false
		for _, e := range except {
			skip = skip || n.ID == e
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// docker runs a docker command on the cluster's behalf and logs how long it
// took.
func (c *cluster) docker(args ...string) {
	c.t.Helper()
	start := time.Now()
	mustDocker(c.t, args...)
	c.t.Logf("docker %s (%v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}
