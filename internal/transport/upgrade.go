package transport

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/errcode"
)

// upgrade is one protocol served by upgrading an HTTP/1.1 request on the
// node's own port (the election's raft stream, the replication stream).
type upgrade struct {
	// protocol is the Upgrade header's value ("kvdb-raft").
	protocol string
	// what names the layer in errors ("the raft stream layer").
	what string
	// handshake bounds writing the 101.
	handshake time.Duration
}

// accept checks r and takes its connection over. It answers 503 when
// closed, 405 to methods other than GET, 400 to a request without
// "Upgrade: <protocol>" or not over HTTP/1.1, and otherwise writes the 101
// and lifts the server's deadlines, which stay on a hijacked connection.
// It returns ok false after answering an error itself; on success,
// buffered is the server's reader when it holds bytes read past the
// request (the peer's first frames), nil otherwise.
func (u upgrade) accept(w http.ResponseWriter, r *http.Request, closed bool) (conn net.Conn, buffered *bufio.Reader, ok bool) {
	switch {
	case closed:
		raftHTTPError(w, http.StatusServiceUnavailable, errcode.ShuttingDown, u.what+" is closed")
		return nil, nil, false
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		raftHTTPError(w, http.StatusMethodNotAllowed, errcode.MethodNotAllowed, "use GET with Upgrade: "+u.protocol)
		return nil, nil, false
	case !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), u.protocol):
		raftHTTPError(w, http.StatusBadRequest, errcode.BadRequest, "want Upgrade: "+u.protocol)
		return nil, nil, false
	case r.ProtoMajor != 1:
		raftHTTPError(w, http.StatusBadRequest, errcode.BadRequest, "the "+u.protocol+" upgrade needs HTTP/1.1")
		return nil, nil, false
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		raftHTTPError(w, http.StatusInternalServerError, errcode.Internal, "cannot take over the connection: "+err.Error())
		return nil, nil, false
	}
	_ = conn.SetDeadline(time.Now().Add(u.handshake))
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+u.protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, nil, false
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, nil, false
	}
	if rw.Reader.Buffered() > 0 {
		buffered = rw.Reader
	}
	return conn, buffered, true
}
