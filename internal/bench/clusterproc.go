package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
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
//	                           "heap PATH"     write a heap profile (after a GC) into PATH
//	                           "mem"           reply "ok {json}": the process's live heap
//	                                           after a full GC and its RSS (ProcMem)
//	                           end of input    shut the cluster down and exit
//
// Every node also listens for RESP (the Redis protocol) on a free port;
// the ready line lists those addresses in "resp_addrs", in member order.
//
// The child also exits when its context ends (SIGINT/SIGTERM), and since
// it stops at the end of its input it cannot outlive the parent.

// clusterInfo is the child's ready line.
type clusterInfo struct {
	URLs      []string `json:"urls"`
	RESPAddrs []string `json:"resp_addrs"`
	// Leader is the index of the leader (leader-follower), -1 otherwise.
	Leader int    `json:"leader"`
	Preset string `json:"preset"`
	Mode   string `json:"mode"`
	W      int    `json:"w"`
	R      int    `json:"r"`
}

// ProcMem is a process's memory, as the "mem" command reports it.
type ProcMem struct {
	// HeapBytes is the live heap (HeapAlloc after two full collections).
	HeapBytes uint64 `json:"heap_bytes"`
	// RSSBytes is the resident set (VmRSS of /proc/self/status; zero where
	// there is none).
	RSSBytes uint64 `json:"rss_bytes"`
}

// measureProcMem measures this process.
func measureProcMem() ProcMem {
	return ProcMem{HeapBytes: liveHeap(), RSSBytes: readRSS("/proc/self/status")}
}

// readRSS returns VmRSS from a /proc/<pid>/status file, in bytes (0 when
// it cannot be read).
func readRSS(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return parseVmRSS(string(b))
}

// parseVmRSS finds "VmRSS:   1234 kB" in a status file's text.
func parseVmRSS(status string) uint64 {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// ServeCluster is the child side: it starts an in-process cluster of the
// preset (delays off, free loopback ports, RESP on), prints its ready line
// on out and serves commands from in until in ends or ctx does. nodes is
// the cluster size (0: 5); peerTransport the nodes' node-to-node
// transport (node.PeerStream or node.PeerHTTP; "": the node default).
func ServeCluster(ctx context.Context, preset string, nodes int, peerTransport string, in io.Reader, out io.Writer) (err error) {
	c, err := cluster.Start(ctx, clusterConfig(preset, nodes, peerTransport))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, c.Close(cctx))
	}()
	if err := c.WaitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	p := c.Preset()
	info := clusterInfo{URLs: c.URLs(), RESPAddrs: c.RESPAddrs(), Leader: c.Leader(), Preset: p.Name, Mode: string(p.Mode), W: p.W, R: p.R}
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
			case "heap":
				if herr := writeHeapProfile(arg); herr != nil {
					reply = "error: " + herr.Error()
				}
			case "mem":
				b, _ := json.Marshal(measureProcMem())
				reply = "ok " + string(b)
			default:
				reply = fmt.Sprintf("error: unknown command %q", cmd)
			}
			if _, err := fmt.Fprintln(out, reply); err != nil {
				return err
			}
		}
	}
}

// respLeaderFirst returns the RESP addresses with the leader's first (as
// the peer client wants them: writes go to the first).
func (i clusterInfo) respLeaderFirst() []string {
	addrs := slices.Clone(i.RESPAddrs)
	if i.Leader > 0 && i.Leader < len(addrs) {
		addrs[0], addrs[i.Leader] = addrs[i.Leader], addrs[0]
	}
	return addrs
}

// clusterConfig is the benchmark's cluster: delays off, RESP on, no
// pause gates on its sockets.
func clusterConfig(preset string, nodes int, peerTransport string) cluster.Config {
	return cluster.Config{Preset: preset, N: nodes, RESP: true, NoPause: true,
		Node: node.Config{PeerTransport: peerTransport, Replication: replication.Config{Delays: replication.NoDelays()}}}
}

// clusterProc is the parent's handle on a child cluster.
type clusterProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	info  clusterInfo
}

// startClusterProc runs `exe bench --serve-cluster preset` (with
// --serve-nodes when nodes is not zero) and waits for its ready line.
func startClusterProc(ctx context.Context, exe, preset string, nodes int, peerTransport string, logs io.Writer) (*clusterProc, error) {
	args := []string{"bench", "--serve-cluster", preset}
	if nodes > 0 {
		args = append(args, "--serve-nodes", strconv.Itoa(nodes))
	}
	if peerTransport != "" {
		args = append(args, "--peer-transport", peerTransport)
	}
	cmd := exec.Command(exe, args...)
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

// command sends one command line and reads the reply; it returns what
// follows "ok ".
func (p *clusterProc) command(line string) (string, error) {
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		return "", err
	}
	reply, err := p.out.ReadString('\n')
	if err != nil {
		return "", err
	}
	reply = strings.TrimSpace(reply)
	if reply == "ok" {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(reply, "ok "); ok {
		return rest, nil
	}
	return "", errors.New(reply)
}

// HeapProfile asks the child for a heap profile into path.
func (p *clusterProc) HeapProfile(path string) error {
	_, err := p.command("heap " + path)
	return err
}

// writeHeapProfile writes this process's heap profile after a GC.
func writeHeapProfile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	return errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
}

// Mem asks the child for its memory.
func (p *clusterProc) Mem() (ProcMem, error) {
	var m ProcMem
	rest, err := p.command("mem")
	if err == nil {
		err = json.Unmarshal([]byte(rest), &m)
	}
	return m, err
}

// StartProfile starts a CPU profile of the child into path.
func (p *clusterProc) StartProfile(path string) error {
	_, err := p.command("profile " + path)
	return err
}

// StopProfile stops it.
func (p *clusterProc) StopProfile() error {
	_, err := p.command("stop")
	return err
}

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
