package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Locations inside the repository.
const (
	PeersScript   = "scripts/bench-peers.sh"
	PeerModuleDir = "bench"
	PeerCmd       = "./cmd/kvdb-peerbench"
)

// FindRepo returns the repository root above dir: the first directory
// holding both scripts/bench-peers.sh and bench/go.mod.
func FindRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, PeersScript)) && fileExists(filepath.Join(d, PeerModuleDir, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no kvdb repository (with %s and %s/go.mod) at or above %s; pass --repo", PeersScript, PeerModuleDir, dir)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BuildPeerBench builds the peer client of the bench/ module into out.
func BuildPeerBench(ctx context.Context, repo, out string, log io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the peer client needs the go tool: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-C", filepath.Join(repo, PeerModuleDir), "-o", out, PeerCmd)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build -C %s -o %s %s: %w", PeerModuleDir, out, PeerCmd, err)
	}
	return nil
}

// Peers is a running set of Redis and etcd servers started by
// scripts/bench-peers.sh.
type Peers struct {
	script, dir string
	log         io.Writer
	// Env holds the endpoints the script printed (REDIS_ADDRS,
	// ETCD_ENDPOINTS).
	Env map[string]string
}

// StartPeers runs `bench-peers.sh start --dir dir <which...>` (which:
// "redis", "etcd"). The script's own log goes to log.
func StartPeers(ctx context.Context, script, dir string, which []string, log io.Writer) (*Peers, error) {
	args := append([]string{script, "start", "--dir", dir}, which...)
	cmd := exec.CommandContext(ctx, "bash", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	cmd.WaitDelay = 5 * time.Second
	p := &Peers{script: script, dir: dir, log: log, Env: map[string]string{}}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s start: %w", filepath.Base(script), err)
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			p.Env[k] = v
		}
	}
	for _, w := range which {
		key := map[string]string{"redis": "REDIS_ADDRS", "etcd": "ETCD_ENDPOINTS"}[w]
		if p.Env[key] == "" {
			p.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("%s start printed no %s", filepath.Base(script), key)
		}
	}
	return p, nil
}

// Stop runs `bench-peers.sh stop --dir dir` (it kills only what it started
// and is safe to repeat).
func (p *Peers) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", p.script, "stop", "--dir", p.dir)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s stop: %w", filepath.Base(p.script), err)
	}
	return nil
}

// PeerRun is one run of the peer client.
type PeerRun struct {
	Bin      string // the kvdb-peerbench binary
	System   string // redis, redis-wait4 or etcd
	Workload string
	Drive    driver.Config
	Env      map[string]string // endpoints, from Peers.Env
	Preload  bool
	// EtcdSerializable makes etcd's reads serializable.
	EtcdSerializable bool
	// WriteAll sends writes round robin to every Redis address (kvdb-resp
	// on a leaderless cluster).
	WriteAll bool
	// Progress receives the client's progress lines.
	Progress io.Writer
}

// Run execs the peer client and parses its JSON row.
func (r PeerRun) Run(ctx context.Context) (driver.Result, error) {
	args := append([]string{"--system", r.System, "--workload", r.Workload, "--progress",
		fmt.Sprintf("--preload=%t", r.Preload), fmt.Sprintf("--etcd-serializable=%t", r.EtcdSerializable)},
		r.Drive.Args()...)
	if r.WriteAll {
		args = append(args, "--write-all")
	}
	if v := r.Env["REDIS_ADDRS"]; v != "" {
		args = append(args, "--redis-addrs", v)
	}
	if v := r.Env["ETCD_ENDPOINTS"]; v != "" {
		args = append(args, "--etcd-endpoints", v)
	}
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	// On cancellation ask it to stop (it reports a partial row), then kill.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, r.Progress
	runErr := cmd.Run()
	var res driver.Result
	if line := bytes.TrimSpace(out.Bytes()); len(line) > 0 {
		if err := json.Unmarshal(line, &res); err != nil {
			return res, errors.Join(runErr, fmt.Errorf("peer client output: %w", err))
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("%s: %w", filepath.Base(r.Bin), runErr)
	}
	if res.System == "" {
		return res, fmt.Errorf("%s printed no result", filepath.Base(r.Bin))
	}
	return res, nil
}
