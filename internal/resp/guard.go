package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
)

// The guard stands between a client connection and redcon's reader, for two
// reasons:
//
//   - redcon bounds nothing: a bulk length or an inline line grows its buffer
//     as far as the client keeps sending, and a bulk length near the integer
//     limit overflows its index arithmetic (a panic that would end the
//     process). The guard checks every header first and ends the connection
//     with Redis's own "-ERR Protocol error: ..." at the first one over the
//     limits: an argument count over MaxArgs, a command (all its arguments
//     and framing) over MaxCommandBytes, an inline command over
//     MaxInlineBytes, a malformed length.
//   - redcon grows its read buffer (by doubling, without compacting) every
//     time the buffer is full and ends in the middle of a command, which a
//     long pipeline does over and over. The guard hands redcon whole commands
//     whenever they fit in the space redcon reads into, so the buffer ends on
//     a command boundary, is consumed completely, and shrinks back.
//
// Only the headers are examined; argument bytes are skipped over, so the
// cost is a few comparisons per argument.

// errProtocol is a protocol error: the client gets "-ERR Protocol error:
// <msg>" and the connection is closed, as Redis does.
type errProtocol struct{ msg string }

func (e *errProtocol) Error() string { return "Protocol error: " + e.msg }

// framer states.
const (
	stStart   = iota // at the first byte of a command
	stCount          // in "*<count>\r\n"
	stCountLF        // after the count's '\r'
	stBulkHdr        // at the '$' of an argument's header
	stBulkLen        // in an argument's length digits
	stBulkLF         // after the length's '\r'
	stBody           // in an argument's bytes and its closing "\r\n"
	stInline         // in an inline (telnet) command, up to '\n'
)

// limits are the bounds the guard enforces.
type limits struct {
	maxArgs    int   // arguments in one command
	maxCommand int64 // bytes of one multibulk command, framing included
	maxInline  int64 // bytes of one inline command
}

// framer is an incremental scanner of the RESP request stream: it finds
// where each command ends and rejects headers over the limits.
type framer struct {
	lim      limits
	state    int
	num      int64 // the number being read (count or length)
	digits   int
	args     int64 // arguments still to come in this command
	body     int64 // bytes still to come in this argument, its "\r\n" included
	cmdBytes int64 // bytes of this command so far
}

// maxDigits bounds a count or length: 18 digits cannot overflow an int64.
const maxDigits = 18

// scan consumes p. It calls boundary with the offset just past each
// command that ends in p, and returns the number of bytes that are valid
// (len(p), or the offset of the first bad byte) with the error found
// there, if any. After an error the framer must not be used again.
func (f *framer) scan(p []byte, boundary func(int)) (int, error) {
	for i := 0; i < len(p); {
		switch f.state {
		case stStart:
			f.cmdBytes = 0
			if p[i] == '*' {
				f.state, f.num, f.digits = stCount, 0, 0
			} else {
				f.state = stInline
				continue // the byte belongs to the line
			}
		case stBody:
			// Skip the argument's bytes, then check its "\r\n".
			if f.body > 2 {
				n := min(int64(len(p)-i), f.body-2)
				f.body -= n
				f.cmdBytes += n
				i += int(n)
				continue
			}
			want := byte('\r')
			if f.body == 1 {
				want = '\n'
			}
			if p[i] != want {
				return i, &errProtocol{"invalid bulk length"}
			}
			f.body--
			if f.body == 0 {
				f.args--
				if f.args == 0 {
					f.state = stStart
					i++
					f.cmdBytes++
					boundary(i)
					continue
				}
				f.state = stBulkHdr
			}
		case stInline:
			j := len(p)
			if k := bytes.IndexByte(p[i:], '\n'); k >= 0 {
				j = i + k
			}
			f.cmdBytes += int64(j - i)
			if f.cmdBytes > f.lim.maxInline {
				return i, &errProtocol{"too big inline request"}
			}
			if j == len(p) {
				return len(p), nil
			}
			f.cmdBytes++
			f.state = stStart
			i = j + 1
			boundary(i)
			continue
		case stCount, stBulkLen:
			c := p[i]
			switch {
			case c >= '0' && c <= '9' && f.digits < maxDigits:
				f.num = f.num*10 + int64(c-'0')
				f.digits++
			case c == '\r' && f.digits > 0:
				if f.state == stCount {
					f.state = stCountLF
				} else {
					f.state = stBulkLF
				}
			case f.state == stCount:
				return i, &errProtocol{"invalid multibulk length"}
			default:
				return i, &errProtocol{"invalid bulk length"}
			}
		case stCountLF:
			if p[i] != '\n' || f.num < 1 {
				return i, &errProtocol{"invalid multibulk length"}
			}
			if f.num > int64(f.lim.maxArgs) {
				return i, &errProtocol{"too many arguments in one command (" + strconv.FormatInt(f.num, 10) + ", limit " + strconv.Itoa(f.lim.maxArgs) + ")"}
			}
			f.args, f.state = f.num, stBulkHdr
		case stBulkHdr:
			if p[i] != '$' {
				return i, &errProtocol{"expected '$', got '" + printable(p[i]) + "'"}
			}
			f.state, f.num, f.digits = stBulkLen, 0, 0
		case stBulkLF:
			if p[i] != '\n' {
				return i, &errProtocol{"invalid bulk length"}
			}
			if f.num > f.lim.maxCommand {
				return i, &errProtocol{"invalid bulk length (" + strconv.FormatInt(f.num, 10) + " bytes, limit " + strconv.FormatInt(f.lim.maxCommand, 10) + ")"}
			}
			if f.cmdBytes+1+f.num+2 > f.lim.maxCommand {
				return i, f.tooLarge()
			}
			f.body, f.state = f.num+2, stBody
		}
		i++
		f.cmdBytes++
		if f.cmdBytes > f.lim.maxCommand {
			return i - 1, f.tooLarge()
		}
	}
	return len(p), nil
}

func (f *framer) tooLarge() error {
	return &errProtocol{"command too large (over " + strconv.FormatInt(f.lim.maxCommand, 10) + " bytes)"}
}

// printable shows a byte in an error message.
func printable(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return string(rune(b))
	}
	return `\x` + strconv.FormatUint(uint64(b), 16)
}

// guardReader reads a client's requests through a framer (see the top of
// this file). On a protocol error it delivers every whole command before
// the bad bytes, then writes the error reply to w and fails the read.
type guardReader struct {
	r      io.Reader
	w      io.Writer
	f      framer
	buf    []byte // what r returned, not yet delivered: buf[off:end]
	off    int
	end    int
	bounds []int // command ends within buf, ascending, all > off
	err    error // the protocol error after buf[:end], if any
}

// guardChunk is how much the guard reads from the connection at once.
const guardChunk = 16 << 10

func newGuardReader(r io.Reader, w io.Writer, lim limits) *guardReader {
	return &guardReader{r: r, w: w, f: framer{lim: lim}, buf: make([]byte, guardChunk)}
}

func (g *guardReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if g.off == g.end {
		if g.err != nil {
			return 0, g.fail()
		}
		if err := g.fill(); err != nil {
			return 0, err
		}
	}
	// Whole commands that fit, else as much as fits (a command larger
	// than p, or one still arriving).
	cut := 0
	k := 0
	for k < len(g.bounds) && g.bounds[k]-g.off <= len(p) {
		cut = g.bounds[k] - g.off
		k++
	}
	if cut == 0 {
		cut = min(len(p), g.end-g.off)
	}
	n := copy(p, g.buf[g.off:g.off+cut])
	g.off += n
	i := 0
	for i < len(g.bounds) && g.bounds[i] <= g.off {
		i++
	}
	g.bounds = g.bounds[:copy(g.bounds, g.bounds[i:])]
	return n, nil
}

// fill reads the next chunk from the connection and scans it.
func (g *guardReader) fill() error {
	g.off, g.end = 0, 0
	g.bounds = g.bounds[:0]
	for {
		n, err := g.r.Read(g.buf)
		if n > 0 {
			_, perr := g.f.scan(g.buf[:n], func(at int) { g.bounds = append(g.bounds, at) })
			g.end = n
			if perr != nil {
				// Deliver the whole commands before the bad one, then fail.
				g.err, g.end = perr, 0
				if k := len(g.bounds); k > 0 {
					g.end = g.bounds[k-1]
				}
				if g.end == 0 {
					return g.fail()
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fail answers the protocol error and ends the stream.
func (g *guardReader) fail() error {
	_, _ = g.w.Write([]byte("-ERR " + g.err.Error() + "\r\n"))
	return g.err
}

// guardConn is a client connection whose reads go through a guardReader.
type guardConn struct {
	net.Conn
	g *guardReader
}

func (c *guardConn) Read(p []byte) (int, error) { return c.g.Read(p) }

// guardListener wraps accepted connections in guardConns. Accept after the
// listener is closed waits for release before it reports net.ErrClosed,
// because redcon closes every connection as soon as Accept fails: the wait
// lets commands in flight finish during a graceful stop.
type guardListener struct {
	net.Listener
	lim     limits
	release <-chan struct{}
	onErr   func(error)
}

func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return &guardConn{Conn: c, g: newGuardReader(c, c, l.lim)}, nil
		}
		if errors.Is(err, net.ErrClosed) {
			<-l.release
			return nil, net.ErrClosed
		}
		// A failure such as too many open files: redcon would retry at
		// once, in a busy loop. Report it and wait a little (or until the
		// stop) before the next try.
		l.onErr(err)
		if waitOrRelease(l.release) {
			return nil, net.ErrClosed
		}
	}
}
