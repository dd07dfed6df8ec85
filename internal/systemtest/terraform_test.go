package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
)

// terraformBinary finds terraform (TERRAFORM, else PATH) or skips.
func terraformBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("KVDB_TERRAFORM_TESTS") == "0" {
		t.Skip("terraform test switched off (KVDB_TERRAFORM_TESTS=0)")
	}
	tf := os.Getenv("TERRAFORM")
	if tf == "" {
		var err error
		if tf, err = exec.LookPath("terraform"); err != nil {
			t.Skip("terraform test: no terraform binary (set TERRAFORM or run terraform/install.sh; scripts/ci-docker.sh does)")
		}
	}
	out, err := exec.Command(tf, "version").Output()
	if err != nil {
		t.Skipf("terraform test: %s version failed: %v", tf, err)
	}
	t.Logf("using %s: %s", tf, strings.SplitN(string(out), "\n", 2)[0])
	return tf
}

// freePortRange returns the first of n consecutive ports free on 127.0.0.1.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(40000)
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

// redisCLIBinary is redis-cli's path, or "" when it is not on PATH (Debian:
// redis-tools, which .ci/run installs).
func redisCLIBinary() string {
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		return ""
	}
	return p
}

// redisCLI runs redis-cli against addr (host:port) with args, bounded in
// time, and returns its trimmed output. redis-cli prints an error reply
// (READONLY ..., ERR ...) on stdout and exits 0; an error here is one it
// could not get an answer for (no connection, timeout).
func redisCLI(bin, addr string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("redis-cli address %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("redis-cli -h %s -p %s %s: %w: %s", host, port, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// terraform runs one terraform command in dir, bounded in time, and
// returns its standard output (warnings on stderr go into errors only).
func terraform(t *testing.T, tf, dir string, timeout time.Duration, args ...string) (string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("terraform %s: %w\n%s\n%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), time.Since(start), err
}

// TestTerraformApplyDestroy applies terraform/ for w3r3 from a copy of the
// module (unique name prefix, free base ports), writes and reads through
// the published HTTP ports and, with redis-cli, the published Redis-protocol
// (RESP) ports (a follower's READONLY names the leader's published RESP
// address, before and after a failover), destroys, and checks that no
// container or network with this test's label is left.
func TestTerraformApplyDestroy(t *testing.T) {
	requireDocker(t)
	tf := terraformBinary(t)
	root := repoRoot(t)
	testImage(t) // the fault tests' image; apply rebuilds it (cached) unless KVDB_TEST_IMAGE is set

	dir := t.TempDir()
	for _, pat := range []string{"*.tf", "*.tfvars"} {
		files, _ := filepath.Glob(filepath.Join(root, "terraform", pat))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	id := uniqueID(t)
	label := "kvdb.test=" + id
	// Ten consecutive free ports: HTTP on the first five, RESP on the
	// next five (two separate ranges could overlap).
	base := freePortRange(t, 2*clusterSize)
	respBase := base + clusterSize
	vars := map[string]any{
		"name_prefix":    id,
		"base_port":      base,
		"resp_base_port": respBase,
		"delays":         "none",
		"source_dir":     root,
		"labels":         map[string]string{"kvdb.test": id, "kvdb.systemtest": "1"},
		// One election setting away from its default, to see it reach
		// the nodes.
		"leader_catchup_wait": "1500ms",
	}
	if img := os.Getenv("KVDB_TEST_IMAGE"); img != "" {
		vars["image"], vars["build_image"] = img, false
	}
	b, _ := json.Marshal(vars)
	if err := os.WriteFile(filepath.Join(dir, "test.tfvars.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	varArgs := []string{"-var-file=w3r3.tfvars", "-var-file=test.tfvars.json"}

	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			if _, _, err := terraform(t, tf, dir, 3*time.Minute, append([]string{"destroy", "-auto-approve", "-input=false", "-no-color"}, varArgs...)...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := removeLabelled(label); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	if _, d, err := terraform(t, tf, dir, 2*time.Minute, "init", "-input=false", "-no-color"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("terraform init (offline, built-in terraform_data only): %v", d.Round(time.Millisecond))
	}
	out, d, err := terraform(t, tf, dir, 5*time.Minute, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, varArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("terraform apply (w3r3, prefix %s, base port %d, RESP base port %d): %v", id, base, respBase, d.Round(time.Millisecond))
	if !strings.Contains(out, "all 5 nodes healthy") {
		t.Errorf("apply did not report the nodes healthy:\n%s", out)
	}

	raw, _, err := terraform(t, tf, dir, time.Minute, "output", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var outputs struct {
		NodeURLs  struct{ Value []string }          `json:"node_urls"`
		LeaderURL struct{ Value string }            `json:"leader_url"`
		Network   struct{ Value string }            `json:"network"`
		Config    struct{ Value map[string]any }    `json:"config"`
		Nodes     struct{ Value map[string]string } `json:"nodes"`
		RespAddrs struct{ Value []string }          `json:"resp_addrs"`
		RespPeers struct{ Value string }            `json:"resp_peers"`
		RedisCLI  struct{ Value string }            `json:"redis_cli"`
	}
	if err := json.Unmarshal([]byte(raw), &outputs); err != nil {
		t.Fatalf("terraform output -json: %v\n%s", err, raw)
	}
	urls := outputs.NodeURLs.Value
	if len(urls) != clusterSize || outputs.LeaderURL.Value != fmt.Sprintf("http://127.0.0.1:%d", base) {
		t.Fatalf("outputs: node_urls %v leader_url %q, want 5 URLs from port %d", urls, outputs.LeaderURL.Value, base)
	}
	t.Logf("outputs: leader_url=%s node_urls=%v config=%v", outputs.LeaderURL.Value, urls, outputs.Config.Value)
	respAddrs := outputs.RespAddrs.Value
	var wantResp, respPeers []string
	for i := range clusterSize {
		a := fmt.Sprintf("127.0.0.1:%d", respBase+i)
		wantResp = append(wantResp, a)
		respPeers = append(respPeers, fmt.Sprintf("node%d=%s", i+1, a))
	}
	if !slices.Equal(respAddrs, wantResp) || outputs.RespPeers.Value != strings.Join(respPeers, ",") ||
		outputs.RedisCLI.Value != fmt.Sprintf("redis-cli -h 127.0.0.1 -p %d", respBase) {
		t.Fatalf("outputs: resp_addrs %v resp_peers %q redis_cli %q; want %v, %q and a redis-cli line for port %d",
			respAddrs, outputs.RespPeers.Value, outputs.RedisCLI.Value, wantResp, strings.Join(respPeers, ","), respBase)
	}
	t.Logf("outputs: resp_addrs=%v redis_cli=%q", respAddrs, outputs.RedisCLI.Value)

	// What Docker holds: five healthy, labelled, non-root containers.
	names := mustDocker(t, "ps", "--filter", "label="+label, "--filter", "label=app=kvdb", "--filter", "label=kvdb.config=w3r3", "--format", "{{.Names}}")
	if got := len(strings.Fields(names)); got != clusterSize {
		t.Errorf("%d running containers labelled %s, app=kvdb, kvdb.config=w3r3; want 5: %q", got, label, names)
	}
	for _, name := range strings.Fields(names) {
		info := mustDocker(t, "inspect", "-f", "{{.Config.User}} {{.State.Health.Status}}", name)
		if info != "65532:65532 healthy" {
			t.Errorf("%s: user and health %q, want \"65532:65532 healthy\"", name, info)
		}
	}
	if nets := mustDocker(t, "network", "ls", "--filter", "label="+label, "--filter", "label=app=kvdb", "--format", "{{.Name}}"); nets != outputs.Network.Value {
		t.Errorf("networks labelled %s: %q, want %q", label, nets, outputs.Network.Value)
	}

	// A set and a get through the published ports.
	cl := newClient(t, 10*time.Second)
	key, value := id+"-key", "hello from terraform"
	if r := cl.set(outputs.LeaderURL.Value, key, value, 0); r.Err != nil || r.Status != http.StatusCreated || r.Acks < 3 {
		t.Fatalf("set via %s: status %d acks %d err %v %q", outputs.LeaderURL.Value, r.Status, r.Acks, r.Err, r.Error)
	} else {
		t.Logf("set via the leader's published port: 201 version %d acks %d in %v", r.Version, r.Acks, r.Elapsed.Round(time.Microsecond))
	}
	if r := cl.get(urls[2], key, 0); r.Err != nil || r.Status != http.StatusOK || r.Value != value {
		t.Fatalf("get via %s: status %d value %q err %v %q", urls[2], r.Status, r.Value, r.Err, r.Error)
	} else {
		t.Logf("get via node3's published port (R=3): 200 %q from %s in %v", r.Value, r.Node, r.Elapsed.Round(time.Microsecond))
	}
	if r := cl.set(urls[1], key, "x", 0); r.Err != nil || r.Status != http.StatusTemporaryRedirect || r.Location != outputs.LeaderURL.Value+"/set" {
		t.Errorf("set via follower %s: want 307 to %s/set, got %d %q %v", urls[1], outputs.LeaderURL.Value, r.Status, r.Location, r.Err)
	}

	// The Redis protocol through the published RESP ports: a SET through
	// the leader, a GET through every node, and a follower that refuses a
	// write naming the leader's published RESP address.
	cli := redisCLIBinary()
	t.Run("RESP", func(t *testing.T) {
		if cli == "" {
			t.Skip("redis-cli is not on PATH (Debian: apt-get install redis-tools; .ci/run installs it): the RESP checks are skipped")
		}
		// The output's line, as a user would paste it.
		fields := strings.Fields(outputs.RedisCLI.Value)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, cli, append(fields[1:], "ping")...).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "PONG" {
			t.Errorf("%s ping: %q %v, want PONG", outputs.RedisCLI.Value, out, err)
		}
		rkey, rvalue := id+"-resp", "hello over RESP"
		start := time.Now()
		if out, err := redisCLI(cli, respAddrs[0], "set", rkey, rvalue); err != nil || out != "OK" {
			t.Fatalf("SET through the leader's RESP port %s: %q %v, want OK", respAddrs[0], out, err)
		}
		t.Logf("SET through the leader's published RESP port %s: OK in %v", respAddrs[0], time.Since(start).Round(time.Millisecond))
		for i, a := range respAddrs {
			if out, err := redisCLI(cli, a, "get", rkey); err != nil || out != rvalue {
				t.Errorf("GET through node%d's RESP port %s: %q %v, want %q", i+1, a, out, err, rvalue)
			}
		}
		// The HTTP write is readable over RESP too (one store).
		if out, err := redisCLI(cli, respAddrs[4], "get", key); err != nil || out != value {
			t.Errorf("GET %s (set over HTTP) through node5's RESP port: %q %v, want %q", key, out, err, value)
		}
		t.Logf("GET through all five published RESP ports: %q", rvalue)
		wantRO := fmt.Sprintf("(leader: node1 %s)", respAddrs[0])
		out, err := redisCLI(cli, respAddrs[1], "set", rkey, "refused")
		if err != nil || !strings.HasPrefix(out, "READONLY ") || !strings.Contains(out, wantRO) {
			t.Errorf("SET through follower node2's RESP port %s: %q %v, want READONLY ... %s", respAddrs[1], out, err, wantRO)
		} else {
			t.Logf("SET through follower node2's RESP port: %s", out)
		}
		if out, err := redisCLI(cli, respAddrs[2], "get", rkey); err != nil || out != rvalue {
			t.Errorf("after the refused SET, GET through node3: %q %v, want %q", out, err, rvalue)
		}
	})

	// What failover needs reached the nodes: every member's published URL
	// (where followers redirect writes when it leads), the founding
	// leader, the election settings and a token (raft's connections
	// between containers need one).
	var redirects []string
	for i, u := range urls {
		redirects = append(redirects, fmt.Sprintf("node%d=%s", i+1, u))
	}
	env := mustDocker(t, "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", id+"-node2")
	for _, want := range []string{"KVDB_REDIRECT_URLS=" + strings.Join(redirects, ","), "KVDB_LEADER=node1", "KVDB_ROLE=follower",
		"KVDB_ELECTION_HEARTBEAT=500ms", "KVDB_ELECTION_TIMEOUT=500ms", "KVDB_LEADER_LEASE=250ms", "KVDB_LEADER_CATCHUP_WAIT=1500ms",
		"KVDB_RESP_ADDR=:6379", "KVDB_RESP_PEERS=" + strings.Join(respPeers, ",")} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("node2's environment lacks %s", want)
		}
	}
	if !strings.Contains(env, "KVDB_CLUSTER_TOKEN=") || strings.Contains(env, "KVDB_CLUSTER_TOKEN=\n") {
		t.Errorf("node2 has no cluster token")
	}

	// Failover through the deployment: kill the leader; a write sent to a
	// follower's published port, following its redirect, is acknowledged
	// by the new leader (W=3 with four nodes), which the redirect names by
	// its published URL.
	mustDocker(t, "kill", id+"-node1")
	killed := time.Now()
	fo, err := kvclient.New(kvclient.Config{Timeout: time.Second,
		Retry: kvclient.RetryPolicy{MaxAttempts: 100, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer fo.Close()
	var res kvclient.SetResult
	waitFor(t, 20*time.Second, "a write through node3 after the leader's death", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err = fo.Set(ctx, id+"-after-kill", "v", kvclient.At(urls[2]))
		return err == nil
	})
	if res.Node == "node1" || !slices.Contains(urls, res.Endpoint) {
		t.Errorf("write after the leader's death: coordinated by %s at %s, want a new leader at one of %v", res.Node, res.Endpoint, urls)
	}
	t.Logf("leader killed: a write through node3 was acknowledged by the new leader %s (%s) %v later", res.Node, res.Endpoint, time.Since(killed).Round(time.Millisecond))

	// Over RESP after the failover: the new leader takes a SET on its
	// published RESP port, and a follower's READONLY names that port.
	t.Run("RESP after failover", func(t *testing.T) {
		if cli == "" {
			t.Skip("redis-cli is not on PATH (Debian: apt-get install redis-tools; .ci/run installs it): the RESP checks are skipped")
		}
		lead := slices.Index(urls, res.Endpoint)
		if lead < 1 {
			t.Fatalf("new leader %s at %s is not one of the surviving nodes %v", res.Node, res.Endpoint, urls[1:])
		}
		follower := 1 // node2, unless it leads now
		if follower == lead {
			follower = 2
		}
		if out, err := redisCLI(cli, respAddrs[lead], "set", id+"-resp-after", "v2"); err != nil || out != "OK" {
			t.Errorf("SET through the new leader's RESP port %s: %q %v, want OK", respAddrs[lead], out, err)
		}
		wantRO := fmt.Sprintf("(leader: %s %s)", res.Node, respAddrs[lead])
		var out, last string
		waitFor(t, 10*time.Second, fmt.Sprintf("node%d's READONLY naming the new leader's RESP address %s", follower+1, wantRO), func() bool {
			var err error
			out, err = redisCLI(cli, respAddrs[follower], "set", id+"-resp-after", "refused")
			if out != last {
				t.Logf("node%d answers the SET: %q %v", follower+1, out, err)
				last = out
			}
			return err == nil && strings.HasPrefix(out, "READONLY ") && strings.Contains(out, wantRO)
		})
		t.Logf("SET through follower node%d's RESP port after the failover: %s", follower+1, out)
	})

	_, d, err = terraform(t, tf, dir, 3*time.Minute, append([]string{"destroy", "-auto-approve", "-input=false", "-no-color"}, varArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	destroyed = true
	t.Logf("terraform destroy: %v", d.Round(time.Millisecond))
	for _, l := range []string{label, "kvdb.project=" + id} {
		if left, err := leftovers(l); err != nil || left != "" {
			t.Errorf("after terraform destroy, still labelled %s: %q %v", l, left, err)
		}
	}
	for i := range clusterSize {
		if r := cl.do(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", base+i), nil); r.Err == nil {
			t.Errorf("port %d still answers after destroy (status %d)", base+i, r.Status)
		}
		if c, err := net.DialTimeout("tcp", respAddrs[i], 2*time.Second); err == nil {
			c.Close()
			t.Errorf("RESP port %s still accepts connections after destroy", respAddrs[i])
		}
	}
}
