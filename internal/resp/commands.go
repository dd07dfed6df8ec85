package resp

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/kvdb/kvdb/internal/replication"
)

// command is one entry of the command table: how to run it and what
// COMMAND and COMMAND DOCS say about it.
type command struct {
	name    string // lower case
	arity   int    // Redis's convention: n exactly, -n at least n (the name counts)
	flags   []string
	keys    [3]int // first key, last key, step (0 0 0: no keys)
	acl     []string
	group   string
	since   string
	summary string
	args    []argDoc
	subs    []*command // documented subcommands (CLIENT, COMMAND, CONFIG)
	run     func(conn redcon.Conn, args [][]byte) error

	count prometheus.Counter
	dur   prometheus.Observer
}

// argDoc documents an argument for COMMAND DOCS (redis-cli's hints).
type argDoc struct {
	name, typ          string
	optional, multiple bool
}

var (
	argKey      = argDoc{name: "key", typ: "key"}
	argKeys     = argDoc{name: "key", typ: "key", multiple: true}
	argMsgOpt   = argDoc{name: "message", typ: "string", optional: true}
	argSections = argDoc{name: "section", typ: "string", optional: true, multiple: true}
)

// commandTable builds the server's commands.
func (s *Server) commandTable() map[string]*command {
	list := []*command{
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, keys: [3]int{1, 1, 1}, acl: []string{"@write", "@string", "@slow"},
			group: "string", since: "1.0.0", summary: "Sets the string value of a key once W copies are acknowledged (no options: kvdb has no expiry or conditional writes).",
			args: []argDoc{argKey, {name: "value", typ: "string"}}, run: s.cmdSet},
		{name: "get", arity: 2, flags: []string{"readonly", "fast"}, keys: [3]int{1, 1, 1}, acl: []string{"@read", "@string", "@fast"},
			group: "string", since: "1.0.0", summary: "Returns the string value of a key, read from R copies.",
			args: []argDoc{argKey}, run: s.cmdGet},
		{name: "del", arity: -2, flags: []string{"write"}, keys: [3]int{1, -1, 1}, acl: []string{"@keyspace", "@write", "@slow"},
			group: "generic", since: "1.0.0", summary: "Deletes keys (replicated tombstones). Returns the number of keys that existed.",
			args: []argDoc{argKeys}, run: s.cmdDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, keys: [3]int{1, -1, 1}, acl: []string{"@keyspace", "@read", "@fast"},
			group: "generic", since: "1.0.0", summary: "Returns the number of the given keys that exist (a key given twice counts twice).",
			args: []argDoc{argKeys}, run: s.cmdExists},
		{name: "ping", arity: -1, flags: []string{"fast"}, acl: []string{"@fast", "@connection"},
			group: "connection", since: "1.0.0", summary: "Returns PONG, or the message given.",
			args: []argDoc{argMsgOpt}, run: s.cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, acl: []string{"@fast", "@connection"},
			group: "connection", since: "1.0.0", summary: "Returns the message given.",
			args: []argDoc{{name: "message", typ: "string"}}, run: s.cmdEcho},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@dangerous"},
			group: "server", since: "1.0.0", summary: "Describes the node: server, clients, memory, stats, replication (kvdb's mode, leader, W, R, N, term), keyspace.",
			args: []argDoc{argSections}, run: s.cmdInfo},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@connection"},
			group: "server", since: "2.8.13", summary: "Describes the commands this server knows.", run: s.cmdCommand,
			subs: []*command{
				{name: "count", arity: 2, group: "server", since: "2.8.13", summary: "Returns the number of commands."},
				{name: "docs", arity: -2, group: "server", since: "7.0.0", summary: "Returns documentary information about commands.",
					args: []argDoc{{name: "command-name", typ: "string", optional: true, multiple: true}}},
				{name: "info", arity: -2, group: "server", since: "2.8.13", summary: "Returns information about commands.",
					args: []argDoc{{name: "command-name", typ: "string", optional: true, multiple: true}}},
				{name: "list", arity: -2, group: "server", since: "7.0.0", summary: "Returns the names of the commands."},
			}},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, acl: []string{"@fast", "@connection"},
			group: "connection", since: "6.0.0", summary: "Handshake: RESP2 only (HELLO 3 answers NOPROTO); no AUTH.",
			args: []argDoc{{name: "protover", typ: "integer", optional: true}}, run: s.cmdHello},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, acl: []string{"@fast", "@connection"},
			group: "connection", since: "1.0.0", summary: "Closes the connection.", run: s.cmdQuit},
		{name: "client", arity: -2, flags: []string{"noscript", "loading", "stale"}, acl: []string{"@slow", "@connection"},
			group: "connection", since: "2.4.0", summary: "Names the connection and says who it is.", run: s.cmdClient,
			subs: []*command{
				{name: "setname", arity: 3, group: "connection", since: "2.6.9", summary: "Sets the connection name.", args: []argDoc{{name: "connection-name", typ: "string"}}},
				{name: "getname", arity: 2, group: "connection", since: "2.6.9", summary: "Returns the connection name."},
				{name: "setinfo", arity: 4, group: "connection", since: "7.2.0", summary: "Records the client library's name or version.",
					args: []argDoc{{name: "attr", typ: "string"}, {name: "value", typ: "string"}}},
				{name: "id", arity: 2, group: "connection", since: "5.0.0", summary: "Returns the connection's ID."},
				{name: "info", arity: 2, group: "connection", since: "6.2.0", summary: "Describes the connection."},
			}},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, acl: []string{"@keyspace", "@fast"},
			group: "connection", since: "1.0.0", summary: "Selects the database: kvdb has only database 0.",
			args: []argDoc{{name: "index", typ: "integer"}}, run: s.cmdSelect},
		{name: "config", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, acl: []string{"@slow"},
			group: "server", since: "2.0.0", summary: "CONFIG GET of the few parameters that mean something here (save, appendonly).", run: s.cmdConfig,
			subs: []*command{
				{name: "get", arity: -3, group: "server", since: "2.0.0", summary: "Returns the values of configuration parameters.",
					args: []argDoc{{name: "parameter", typ: "string", multiple: true}}},
			}},
	}
	m := make(map[string]*command, 2*len(list))
	for _, c := range list {
		c.count = s.m.commands.WithLabelValues(c.name)
		c.dur = s.m.duration.WithLabelValues(c.name)
		m[c.name] = c
		m[strings.ToUpper(c.name)] = c
	}
	return m
}

// lookup finds a command by name, in any case.
func (s *Server) lookup(name []byte) *command {
	if c, ok := s.cmds[string(name)]; ok {
		return c
	}
	return s.cmds[string(bytes.ToLower(name))]
}

// handle runs one command (redcon calls it for each, in order, on the
// connection's goroutine; it writes the replies out after each batch).
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	s.active.Add(1)
	defer func() {
		if s.active.Add(-1) == 0 && s.draining.Load() {
			select {
			case s.idle <- struct{}{}:
			default:
			}
		}
	}()
	s.commands.Add(1)
	c := s.lookup(cmd.Args[0])
	if c == nil {
		s.m.commands.WithLabelValues("unknown").Inc()
		s.m.errors.WithLabelValues("unknown", "ERR").Inc()
		conn.WriteError(unknownCommand(cmd.Args).wire())
		return
	}
	c.count.Inc()
	if s.draining.Load() {
		s.writeError(conn, c, errorf("ERR", "kvdb is shutting down"))
		return
	}
	if (c.arity > 0 && len(cmd.Args) != c.arity) || (c.arity < 0 && len(cmd.Args) < -c.arity) {
		s.writeError(conn, c, wrongArity(c.name))
		return
	}
	start := time.Now()
	err := c.run(conn, cmd.Args)
	c.dur.Observe(time.Since(start).Seconds())
	if err != nil {
		s.writeError(conn, c, s.mapError(err, c.name))
	}
}

func (s *Server) writeError(conn redcon.Conn, c *command, e *Error) {
	s.m.errors.WithLabelValues(c.name, e.Prefix).Inc()
	conn.WriteError(e.wire())
}

// unknownCommand is Redis's answer, word for word.
func unknownCommand(args [][]byte) *Error {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		prec := 128 - b.Len()
		b.WriteByte('\'')
		b.Write(a[:min(len(a), prec)])
		b.WriteString("' ")
	}
	return errorf("ERR", "unknown command '%s', with args beginning with: %s", truncate(args[0], 128), b.String())
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func wrongArity(name string) *Error {
	return errorf("ERR", "wrong number of arguments for '%s' command", name)
}

func unknownSubcommand(sub []byte, cmd string) *Error {
	return errorf("ERR", "unknown subcommand '%s'. Try %s HELP.", truncate(sub, 128), strings.ToUpper(cmd))
}

// checkKey applies kvdb's key rules to a key about to be written. The
// empty key, which Redis allows, is refused as on the HTTP API (where a
// key must be readable back by path).
func (s *Server) checkKey(k []byte) error {
	switch {
	case len(k) == 0:
		return errorf("ERR", "empty key: kvdb keys are 1 to %d bytes of valid UTF-8", s.cfg.MaxKeyBytes)
	case len(k) > s.cfg.MaxKeyBytes:
		return errorf("ERR", "key is %d bytes, limit %d", len(k), s.cfg.MaxKeyBytes)
	case !utf8.Valid(k):
		return errorf("ERR", "key is not valid UTF-8: kvdb keys and values are UTF-8 text")
	}
	return nil
}

// storable reports whether kvdb could hold key k: a key it could not is
// one that does not exist, for GET, EXISTS and DEL.
func (s *Server) storable(k []byte) bool { return s.checkKey(k) == nil }

// opContext is a command's context: bounded by the request timeout when
// the command waits for peers (waits), else the server's own (no timer to
// set and stop on the hot path of W=1 writes and R=1 reads).
func (s *Server) opContext(waits bool) (context.Context, context.CancelFunc) {
	if !waits {
		return s.ctx, func() {}
	}
	return context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
}

// setOptions are the SET options Redis has; kvdb supports none of them.
var setOptions = map[string]bool{"nx": true, "xx": true, "get": true, "keepttl": true, "ex": true, "px": true, "exat": true, "pxat": true}

func (s *Server) cmdSet(conn redcon.Conn, args [][]byte) error {
	if len(args) > 3 {
		opt := strings.ToLower(string(args[3]))
		if setOptions[opt] {
			return errorf("ERR", "SET option %s is not supported by kvdb (no expiry, no conditional writes): send SET key value", strings.ToUpper(opt))
		}
		return errSyntax
	}
	key, value := args[1], args[2]
	if err := s.checkKey(key); err != nil {
		return err
	}
	if len(value) > s.cfg.MaxValueBytes {
		return errorf("ERR", "value is %d bytes, limit %d", len(value), s.cfg.MaxValueBytes)
	}
	if !utf8.Valid(value) {
		return errorf("ERR", "value is not valid UTF-8: kvdb keys and values are UTF-8 text")
	}
	ctx, cancel := s.opContext(s.writeWaits())
	defer cancel()
	// Key and value in one allocation: the update carries both until every
	// peer has it (the store keeps copies of its own).
	kv := string(key) + string(value)
	if _, err := s.b.Write(ctx, kv[:len(key)], kv[len(key):], replication.Options{}); err != nil {
		return s.mapError(err, "write")
	}
	conn.WriteString("OK")
	return nil
}

// read reads key; found is false for a key no replica read has.
func (s *Server) read(key []byte) (string, bool, error) {
	if !s.storable(key) {
		return "", false, nil
	}
	ctx, cancel := s.opContext(s.readWaits())
	defer cancel()
	res, err := s.b.Read(ctx, string(key), replication.Options{})
	if errors.Is(err, replication.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, s.mapError(err, "read")
	}
	return res.Value, true, nil
}

// writeWaits reports whether a write waits for peers, and so needs the
// request timer: with W>1 it waits for acknowledgements, and a leaderless
// coordinator first asks its peers for the key's version. A
// leader-follower write at W=1 is answered once the local copy holds it.
func (s *Server) writeWaits() bool {
	w, _ := s.b.Quorums()
	return w > 1 || s.leaderless
}

// readWaits reports whether a read waits for peers (R>1), and so needs
// the request timeout: an R=1 read is this node's copy and never blocks.
func (s *Server) readWaits() bool {
	_, r := s.b.Quorums()
	return r > 1
}

func (s *Server) cmdGet(conn redcon.Conn, args [][]byte) error {
	v, ok, err := s.read(args[1])
	if err != nil {
		return err
	}
	if !ok {
		conn.WriteNull()
		return nil
	}
	conn.WriteBulkString(v)
	// redcon writes a pipeline's replies out after the whole batch: large
	// values are flushed as they go, so a pipeline of GETs holds at most
	// about flushAfter bytes of replies (Redis bounds its output buffers
	// too).
	cl := clientOf(conn)
	if cl.unflushed += len(v); cl.unflushed >= flushAfter {
		cl.unflushed = 0
		if w := redcon.BaseWriter(conn); w != nil {
			_ = w.Flush() // a failed write ends the connection at the batch's flush
		}
	}
	return nil
}

// flushAfter is how many bytes of values a connection's replies may hold
// before they are written out mid-pipeline.
const flushAfter = 256 << 10

func (s *Server) cmdExists(conn redcon.Conn, args [][]byte) error {
	n := 0
	for _, k := range args[1:] {
		_, ok, err := s.read(k)
		if err != nil {
			return err
		}
		if ok {
			n++
		}
	}
	conn.WriteInt(n)
	return nil
}

// cmdDel deletes each distinct key and answers how many existed, as Redis
// counts them: a read (at the node's R) just before each delete decides.
// The delete itself is unconditional — a replicated tombstone, sent even
// when the read found nothing, since a read of fewer than all copies can
// miss a key that a delete must still remove. A write racing the DEL may
// make the count off by the keys it touches; the outcome of the deletes is
// not affected. Keys are deleted one after another: an error stops there
// (the keys before it are deleted).
func (s *Server) cmdDel(conn redcon.Conn, args [][]byte) error {
	n := 0
	seen := make(map[string]bool, len(args)-1)
	for _, k := range args[1:] {
		if seen[string(k)] || !s.storable(k) {
			continue
		}
		seen[string(k)] = true
		_, found, err := s.read(k)
		if err != nil {
			return err
		}
		ctx, cancel := s.opContext(true)
		_, err = s.b.Delete(ctx, string(k), replication.Options{})
		cancel()
		if err != nil {
			return s.mapError(err, "delete")
		}
		if found {
			n++
		}
	}
	conn.WriteInt(n)
	return nil
}

func (s *Server) cmdPing(conn redcon.Conn, args [][]byte) error {
	switch len(args) {
	case 1:
		conn.WriteString("PONG")
	case 2:
		conn.WriteBulk(args[1])
	default:
		return wrongArity("ping")
	}
	return nil
}

func (s *Server) cmdEcho(conn redcon.Conn, args [][]byte) error {
	conn.WriteBulk(args[1])
	return nil
}

func (s *Server) cmdQuit(conn redcon.Conn, _ [][]byte) error {
	conn.WriteString("OK")
	conn.ReadPipeline() // Redis runs nothing sent after QUIT
	return conn.Close()
}

func (s *Server) cmdSelect(conn redcon.Conn, args [][]byte) error {
	db, err := strconv.Atoi(string(args[1]))
	if err != nil {
		return errorf("ERR", "value is not an integer or out of range")
	}
	if db != 0 {
		return errorf("ERR", "DB index is out of range (kvdb has only database 0)")
	}
	conn.WriteString("OK")
	return nil
}

// cmdHello answers the handshake in RESP2. HELLO 3 gets NOPROTO, on which
// clients (go-redis among them) carry on in RESP2.
func (s *Server) cmdHello(conn redcon.Conn, args [][]byte) error {
	cl := clientOf(conn)
	rest := args[1:]
	if len(rest) > 0 {
		v, err := strconv.Atoi(string(rest[0]))
		if err != nil {
			return errorf("ERR", "Protocol version is not an integer or out of range")
		}
		if v != 2 {
			return errorf("NOPROTO", "unsupported protocol version (kvdb speaks RESP2)")
		}
		rest = rest[1:]
	}
	name, named := "", false
	for len(rest) > 0 {
		switch strings.ToLower(string(rest[0])) {
		case "auth":
			if len(rest) < 3 {
				return errSyntax
			}
			return errorf("ERR", "AUTH is not supported: kvdb's RESP port has no passwords (keep it on a trusted network)")
		case "setname":
			if len(rest) < 2 {
				return errSyntax
			}
			if err := checkClientName(rest[1]); err != nil {
				return err
			}
			name, named = string(rest[1]), true
			rest = rest[2:]
		default:
			return errorf("ERR", "Syntax error in HELLO option '%s'", truncate(rest[0], 128))
		}
	}
	if named {
		cl.name = name
	}
	role := "master"
	if s.b.Info().Role == "follower" {
		role = "replica"
	}
	conn.WriteArray(14)
	conn.WriteBulkString("server")
	conn.WriteBulkString("kvdb")
	conn.WriteBulkString("version")
	conn.WriteBulkString(redisVersion)
	conn.WriteBulkString("proto")
	conn.WriteInt(2)
	conn.WriteBulkString("id")
	conn.WriteInt64(cl.id)
	conn.WriteBulkString("mode")
	conn.WriteBulkString("standalone")
	conn.WriteBulkString("role")
	conn.WriteBulkString(role)
	conn.WriteBulkString("modules")
	conn.WriteArray(0)
	return nil
}

// redisVersion is the Redis version whose commands and replies kvdb's
// subset follows.
const redisVersion = "7.0.0"

func clientOf(conn redcon.Conn) *client {
	if c, ok := conn.Context().(*client); ok {
		return c
	}
	c := &client{created: time.Now()}
	conn.SetContext(c)
	return c
}

func checkClientName(b []byte) error {
	for _, c := range b {
		if c < '!' || c > '~' {
			return errorf("ERR", "Client names cannot contain spaces, newlines or special characters.")
		}
	}
	return nil
}

func (s *Server) cmdClient(conn redcon.Conn, args [][]byte) error {
	cl := clientOf(conn)
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"setname": 3, "getname": 2, "setinfo": 4, "id": 2, "info": 2}
	want, ok := arity[sub]
	if !ok {
		if sub == "help" {
			writeLines(conn, "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
				"SETNAME <name>", "    Names the connection.", "GETNAME", "    Returns the name of the connection.",
				"SETINFO <LIB-NAME|LIB-VER> <value>", "    Records the client library.", "ID", "    Returns the connection's ID.",
				"INFO", "    Describes the connection.", "HELP", "    Prints this help.")
			return nil
		}
		return unknownSubcommand(args[1], "client")
	}
	if len(args) != want {
		return wrongArity("client|" + sub)
	}
	switch sub {
	case "setname":
		if err := checkClientName(args[2]); err != nil {
			return err
		}
		cl.name = string(args[2])
		conn.WriteString("OK")
	case "getname":
		if cl.name == "" {
			conn.WriteNull()
		} else {
			conn.WriteBulkString(cl.name)
		}
	case "setinfo":
		if err := checkClientName(args[3]); err != nil {
			return errorf("ERR", "%s cannot contain spaces, newlines or special characters.", strings.ToUpper(string(args[2])))
		}
		switch strings.ToLower(string(args[2])) {
		case "lib-name":
			cl.lib = string(args[3])
		case "lib-ver":
			cl.libVer = string(args[3])
		default:
			return errorf("ERR", "Unrecognized option '%s'", truncate(args[2], 128))
		}
		conn.WriteString("OK")
	case "id":
		conn.WriteInt64(cl.id)
	case "info":
		conn.WriteBulkString(s.clientLine(conn, cl) + "\n")
	}
	return nil
}

func (s *Server) clientLine(conn redcon.Conn, cl *client) string {
	return "id=" + strconv.FormatInt(cl.id, 10) + " addr=" + conn.RemoteAddr() + " name=" + cl.name +
		" age=" + strconv.Itoa(int(time.Since(cl.created).Seconds())) + " db=0 lib-name=" + cl.lib + " lib-ver=" + cl.libVer
}

// writeLines answers HELP: an array of status lines, as Redis does.
func writeLines(conn redcon.Conn, lines ...string) {
	conn.WriteArray(len(lines))
	for _, l := range lines {
		conn.WriteString(l)
	}
}

func (s *Server) cmdConfig(conn redcon.Conn, args [][]byte) error {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "get":
		if len(args) < 3 {
			return wrongArity("config|get")
		}
		appendonly := "no"
		if s.cfg.Durable {
			appendonly = "yes"
		}
		params := [][2]string{{"save", ""}, {"appendonly", appendonly}, {"databases", "1"}, {"maxclients", strconv.Itoa(s.cfg.MaxClients)}}
		var out []string
		for _, p := range params {
			for _, pat := range args[2:] {
				if match(strings.ToLower(string(pat)), p[0]) {
					out = append(out, p[0], p[1])
					break
				}
			}
		}
		conn.WriteArray(len(out))
		for _, v := range out {
			conn.WriteBulkString(v)
		}
		return nil
	case "help":
		writeLines(conn, "CONFIG <subcommand> [<arg> ...]. Subcommands are:", "GET <pattern>",
			"    Returns the parameters matching the glob-like <pattern> and their values (save, appendonly, databases, maxclients).",
			"HELP", "    Prints this help.")
		return nil
	case "set", "resetstat", "rewrite":
		return errorf("ERR", "CONFIG %s is not supported by kvdb (W and R change with PUT /config on the HTTP API)", strings.ToUpper(sub))
	}
	return unknownSubcommand(args[1], "config")
}

// match is a glob match with * and ? (CONFIG GET's patterns).
func match(pattern, name string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(name); i >= 0; i-- {
				if match(pattern[1:], name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
		default:
			if name == "" || name[0] != pattern[0] {
				return false
			}
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}
