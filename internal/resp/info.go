package resp

import (
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/kvdb/kvdb/internal/replication"
)

// infoSections are INFO's sections, in order: only those that mean
// something for kvdb.
var infoSections = []string{"server", "clients", "memory", "stats", "replication", "keyspace"}

// cmdInfo answers INFO [section ...]: no section, "default", "all" or
// "everything" give every section; unknown sections are left out, as
// Redis does.
func (s *Server) cmdInfo(conn redcon.Conn, args [][]byte) error {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["default"] || want["all"] || want["everything"]
	var b strings.Builder
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		s.writeSection(&b, sec)
	}
	conn.WriteBulkString(b.String())
	return nil
}

type infoWriter struct{ b *strings.Builder }

func (w infoWriter) kv(k string, v any) {
	w.b.WriteString(k)
	w.b.WriteByte(':')
	switch v := v.(type) {
	case string:
		w.b.WriteString(v)
	case int:
		w.b.WriteString(strconv.Itoa(v))
	case int64:
		w.b.WriteString(strconv.FormatInt(v, 10))
	case uint64:
		w.b.WriteString(strconv.FormatUint(v, 10))
	case bool:
		if v {
			w.b.WriteByte('1')
		} else {
			w.b.WriteByte('0')
		}
	}
	w.b.WriteString("\r\n")
}

func (s *Server) writeSection(b *strings.Builder, sec string) {
	w := infoWriter{b}
	b.WriteString("# " + strings.ToUpper(sec[:1]) + sec[1:] + "\r\n")
	switch sec {
	case "server":
		w.kv("redis_version", redisVersion)
		w.kv("kvdb_version", kvdbVersion())
		w.kv("redis_mode", "standalone")
		w.kv("os", runtime.GOOS+" "+runtime.GOARCH)
		w.kv("arch_bits", strconv.Itoa(strconv.IntSize))
		w.kv("go_version", runtime.Version())
		w.kv("process_id", os.Getpid())
		w.kv("tcp_port", s.port())
		up := time.Since(s.started)
		w.kv("uptime_in_seconds", int64(up.Seconds()))
		w.kv("uptime_in_days", int64(up.Hours()/24))
		w.kv("kvdb_node", s.b.Info().Node)
	case "clients":
		w.kv("connected_clients", s.clients.Load())
		w.kv("maxclients", s.cfg.MaxClients)
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.kv("used_memory", ms.HeapAlloc)
		w.kv("used_memory_human", human(ms.HeapAlloc))
		if rss, ok := rssBytes(); ok {
			w.kv("used_memory_rss", rss)
			w.kv("used_memory_rss_human", human(rss))
		}
		w.kv("used_memory_sys", ms.Sys)
		w.kv("mem_allocator", "go")
		w.kv("kvdb_heap_objects", ms.HeapObjects)
		w.kv("kvdb_gc_cycles", uint64(ms.NumGC))
	case "stats":
		w.kv("total_connections_received", s.total.Load())
		w.kv("total_commands_processed", s.commands.Load())
	case "replication":
		s.replicationSection(w)
	case "keyspace":
		if st, ok := s.b.(Stats); ok {
			if n := st.Keys(); n > 0 {
				w.kv("db0", "keys="+strconv.Itoa(n)+",expires=0,avg_ttl=0")
			}
		}
	}
}

// replicationSection speaks Redis's words where they fit (role,
// connected_slaves, master_host/port, master_link_status) and adds kvdb's
// own: mode, role, leader, term, W, R, N, delays.
func (s *Server) replicationSection(w infoWriter) {
	inf := s.b.Info()
	follower := inf.Role == "follower"
	if follower {
		w.kv("role", "slave")
		if addr := s.cfg.Addrs[inf.Leader]; addr != "" {
			if host, port, err := net.SplitHostPort(addr); err == nil {
				w.kv("master_host", host)
				w.kv("master_port", port)
			}
		}
		status := "down"
		if inf.Leader != "" {
			status = "up"
		}
		w.kv("master_link_status", status)
		w.kv("connected_slaves", 0)
	} else {
		w.kv("role", "master")
		// The nodes this one replicates to as a coordinator; kvdb does
		// not track link state here (see /metrics and /health for that).
		w.kv("connected_slaves", max(inf.N-1, 0))
	}
	w.kv("kvdb_mode", string(inf.Mode))
	w.kv("kvdb_role", inf.Role)
	if inf.Mode == replication.LeaderFollower {
		w.kv("kvdb_leader", inf.Leader)
		if addr := s.cfg.Addrs[inf.Leader]; addr != "" {
			w.kv("kvdb_leader_addr", addr)
		}
		w.kv("kvdb_term", inf.Term)
		w.kv("kvdb_leader_catching_up", inf.CatchingUp)
	}
	w.kv("kvdb_w", inf.W)
	w.kv("kvdb_r", inf.R)
	w.kv("kvdb_n", inf.N)
	w.kv("kvdb_delays", inf.Delays.String())
	w.kv("kvdb_ready", s.b.Ready())
	if st, ok := s.b.(Stats); ok {
		w.kv("kvdb_pending_replication", st.Pending())
	}
	if inf.PossibleLoss != "" {
		w.kv("kvdb_possible_loss", lineBreaks.Replace(inf.PossibleLoss))
	}
}

func (s *Server) port() string {
	if a := s.Addr(); a != nil {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	return "0"
}

func kvdbVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// human formats bytes as Redis does (1.50M).
func human(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "K", "M", "G"} {
		if f < 1024 || u == "G" {
			if u == "B" {
				return strconv.FormatUint(n, 10) + "B"
			}
			return strconv.FormatFloat(f, 'f', 2, 64) + u
		}
		f /= 1024
	}
	return ""
}

// rssBytes is the process's resident set size, where /proc tells it.
func rssBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND LIST, COMMAND INFO
// and COMMAND DOCS: enough for redis-cli's help and hints.
func (s *Server) cmdCommand(conn redcon.Conn, args [][]byte) error {
	list := s.commandList()
	if len(args) == 1 {
		conn.WriteArray(len(list))
		for _, c := range list {
			writeCommandInfo(conn, c)
		}
		return nil
	}
	sub := strings.ToLower(string(args[1]))
	named := func() []*command {
		if len(args) == 2 {
			return list
		}
		out := make([]*command, 0, len(args)-2)
		for _, a := range args[2:] {
			out = append(out, s.lookup(a)) // nil for an unknown name
		}
		return out
	}
	switch sub {
	case "count":
		if len(args) != 2 {
			return wrongArity("command|count")
		}
		conn.WriteInt(len(list))
	case "list":
		conn.WriteArray(len(list))
		for _, c := range list {
			conn.WriteBulkString(c.name)
		}
	case "info":
		cs := named()
		conn.WriteArray(len(cs))
		for _, c := range cs {
			if c == nil {
				conn.WriteNull()
			} else {
				writeCommandInfo(conn, c)
			}
		}
	case "docs":
		cs := slices.DeleteFunc(named(), func(c *command) bool { return c == nil })
		conn.WriteArray(2 * len(cs))
		for _, c := range cs {
			conn.WriteBulkString(c.name)
			writeDocs(conn, c)
		}
	case "help":
		writeLines(conn, "COMMAND <subcommand> [<arg> ...]. Subcommands are:", "(no subcommand)", "    Describes every command.",
			"COUNT", "    Returns the number of commands.", "LIST", "    Returns the command names.",
			"INFO [<command-name> ...]", "    Describes the commands named.", "DOCS [<command-name> ...]", "    Documents the commands named.",
			"HELP", "    Prints this help.")
	default:
		return unknownSubcommand(args[1], "command")
	}
	return nil
}

// commandList is every command once, sorted by name.
func (s *Server) commandList() []*command {
	var list []*command
	for k, c := range s.cmds {
		if k == c.name {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return list
}

// writeCommandInfo writes a command's COMMAND entry (Redis 7's ten fields).
func writeCommandInfo(conn redcon.Conn, c *command) {
	conn.WriteArray(10)
	conn.WriteBulkString(c.name)
	conn.WriteInt(c.arity)
	writeStatuses(conn, c.flags)
	conn.WriteInt(c.keys[0])
	conn.WriteInt(c.keys[1])
	conn.WriteInt(c.keys[2])
	writeStatuses(conn, c.acl)
	conn.WriteArray(0) // tips
	conn.WriteArray(0) // key specs
	conn.WriteArray(len(c.subs))
	for _, sub := range c.subs {
		full := &command{name: c.name + "|" + sub.name, arity: sub.arity, flags: c.flags, acl: c.acl}
		writeCommandInfo(conn, full)
	}
}

func writeStatuses(conn redcon.Conn, ss []string) {
	conn.WriteArray(len(ss))
	for _, s := range ss {
		conn.WriteString(s)
	}
}

// writeDocs writes a command's COMMAND DOCS map (a flat array in RESP2).
func writeDocs(conn redcon.Conn, c *command) {
	n := 3
	if len(c.args) > 0 {
		n++
	}
	if len(c.subs) > 0 {
		n++
	}
	conn.WriteArray(2 * n)
	conn.WriteBulkString("summary")
	conn.WriteBulkString(c.summary)
	conn.WriteBulkString("since")
	conn.WriteBulkString(c.since)
	conn.WriteBulkString("group")
	conn.WriteBulkString(c.group)
	if len(c.args) > 0 {
		conn.WriteBulkString("arguments")
		conn.WriteArray(len(c.args))
		for _, a := range c.args {
			var flags []string
			if a.optional {
				flags = append(flags, "optional")
			}
			if a.multiple {
				flags = append(flags, "multiple")
			}
			fields := 2
			if len(flags) > 0 {
				fields++
			}
			conn.WriteArray(2 * fields)
			conn.WriteBulkString("name")
			conn.WriteBulkString(a.name)
			conn.WriteBulkString("type")
			conn.WriteBulkString(a.typ)
			if len(flags) > 0 {
				conn.WriteBulkString("flags")
				writeStatuses(conn, flags)
			}
		}
	}
	if len(c.subs) > 0 {
		conn.WriteBulkString("subcommands")
		conn.WriteArray(2 * len(c.subs))
		for _, sub := range c.subs {
			conn.WriteBulkString(c.name + "|" + sub.name)
			writeDocs(conn, sub)
		}
	}
}
