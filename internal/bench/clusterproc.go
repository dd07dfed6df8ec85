package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// A kvdb cluster for the benchmark runs in a child process by default
// (`kvdb bench --serve-cluster PRESET`), like the peers do, so that the
// load generator and the cluster have runtimes (heaps, GCs, schedulers) of
// their own and a CPU profile of the child holds the cluster alone. The
// child speaks a line protocol:
//
//	child stdout, once ready:  {"urls":[...],"preset":"w5r1","mode":"leader-follower","w":5,"r":1}
//	parent stdin -> child:     "profile PATH"  start a CPU profile into PATH
//	                           "stop"          stop it, then reply "ok" (or "error: ...")
//	                           end of input    shut the cluster down and exit
//
// The child also exits when its context ends (SIGINT/SIGTERM), and since
// it stops at the end of its input it cannot outlive the parent.

// clusterInfo is the child's ready line.
type clusterInfo struct {
	URLs   []string `json:"urls"`
	Preset string   `json:"preset"`
	Mode   string   `json:"mode"`
	W      int      `json:"w"`
	R      int      `json:"r"`
}

// ServeCluster is the child side: it starts an in-process cluster of the
// preset (delays off, free loopback ports), prints its ready line on out
// and serves commands from in until in ends or ctx does.
func ServeCluster(ctx context.Context, preset string, in io.Reader, out io.Writer) (err error) {
	c, err := cluster.Start(ctx, cluster.Config{Preset: preset, Node: node.Config{Replication: replication.Config{Delays: replication.NoDelays()}}})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, c.Close(cctx))
	}()
	p := c.Preset()
	info := clusterInfo{URLs: c.URLs(), Preset: p.Name, Mode: string(p.Mode), W: p.W, R: p.R}
	if err := json.NewEncoder(out).Encode(info); err != nil {
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var stopProfile func()
	defer func() {
		if stopProfile != nil {
			stopProfile()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
			reply := "ok"
			switch cmd {
			case "profile":
				if stopProfile != nil {
					reply = "error: a profile is running"
				} else if stopProfile, err = startCPUProfile(arg); err != nil {
					reply = "error: " + err.Error()
				}
			case "stop":
				if stopProfile != nil {
					stopProfile()
					stopProfile = nil
				}
			default:
				reply = fmt.Sprintf("error: unknown command %q", cmd)
			}
			if _, err := fmt.Fprintln(out, reply); err != nil {
				return err
			}
		}
	}
}

// clusterProc is the parent's handle on a child cluster.
type clusterProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	info  clusterInfo
}

// startClusterProc runs `exe bench --serve-cluster preset` and waits for
// its ready line.
func startClusterProc(ctx context.Context, exe, preset string, logs io.Writer) (*clusterProc, error) {
	cmd := exec.Command(exe, "bench", "--serve-cluster", preset)
	cmd.Stderr = logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &clusterProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	ready := make(chan error, 1)
	go func() {
		line, err := p.out.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &p.info)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(60 * time.Second):
		err = errors.New("no ready line after 60s")
	}
	if err != nil || len(p.info.URLs) == 0 {
		p.Close()
		return nil, fmt.Errorf("kvdb cluster process (%s bench --serve-cluster %s): %v", exe, preset, err)
	}
	return p, nil
}

// command sends one command line and reads the reply.
func (p *clusterProc) command(line string) error {
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		return err
	}
	reply, err := p.out.ReadString('\n')
	if err != nil {
		return err
	}
	if reply = strings.TrimSpace(reply); reply != "ok" {
		return errors.New(reply)
	}
	return nil
}

// StartProfile starts a CPU profile of the child into path.
func (p *clusterProc) StartProfile(path string) error { return p.command("profile " + path) }

// StopProfile stops it.
func (p *clusterProc) StopProfile() error { return p.command("stop") }

// Close ends the child's input (it shuts the cluster down) and waits for
// it, killing it if it takes too long.
func (p *clusterProc) Close() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		return errors.Join(errors.New("kvdb cluster process did not stop in 20s; killed"), <-done)
	}
}
