package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// The replication stream's framing (stream.go is the dialing side,
// stream_server.go the serving side). After the upgrade handshake
// (GET /internal/stream, "Upgrade: kvdb-stream/1") both directions carry
// frames:
//
//	length  uint32, big-endian: the bytes after this field (type, id, body)
//	type    uint8
//	id      uint32, big-endian: the request's ID, echoed by its answer
//	body    length-5 bytes
//
// Requests (dialing side to serving side):
//
//	replicate   one update: an update message (codec.go) of one update
//	batch       an update message of one or more updates
//	read        the key's raw bytes
//	quorum      w, r as uvarints
//	probe       empty: is the peer ready?
//	cancel      empty: the caller of request id gave up (no answer)
//
// Answers (serving side to dialing side), in any order:
//
//	ok          stamp: int64, big-endian Unix nanoseconds
//	entry       stamp, found (0 or 1), then if found an update message of
//	            one update holding the value, version and tombstone flag
//	            (its key empty)
//	error       status uint16 (the HTTP status the endpoint would have
//	            answered), code length uint8, code, message
//
// The stamp is the moment the replica applied the update or read its copy,
// as HeaderStamp carries over HTTP (package hops splits the round trip
// there).

// Stream constants.
const (
	// PathStream is the endpoint the replication stream upgrades.
	PathStream = "/internal/stream"
	// StreamProtocol is the Upgrade token of the replication stream; the
	// suffix is the framing's version.
	StreamProtocol = "kvdb-stream/1"
)

// Frame types.
const (
	frameReplicate byte = 1
	frameBatch     byte = 2
	frameRead      byte = 3
	frameQuorum    byte = 4
	frameProbe     byte = 5
	frameCancel    byte = 6

	frameOK    byte = 0x81
	frameEntry byte = 0x82
	frameError byte = 0x83
)

// frameHeaderLen is the fixed part of a frame: length, type, id.
const frameHeaderLen = 4 + 1 + 4

// maxErrorMessage bounds the message of an error answer, as statusError
// reads at most 512 bytes of an HTTP error body.
const maxErrorMessage = 512

// ErrFrame is the error of a malformed frame: the stream is broken and
// closed.
var ErrFrame = errors.New("transport: malformed stream frame")

// errFrameTooLarge is a frame longer than the limit: its header is read,
// its body is not.
var errFrameTooLarge = errors.New("stream frame over the limit")

// frameTooLargeError carries the header of a frame over the limit, so the
// reader can skip its body.
type frameTooLargeError struct {
	h   frameHeader
	max int64
}

func (e *frameTooLargeError) Error() string {
	return fmt.Sprintf("%v: frame of %d bytes, limit %d", errFrameTooLarge, e.h.n+frameHeaderLen-4, e.max)
}

func (e *frameTooLargeError) Unwrap() error { return errFrameTooLarge }

// maxFrameLen is the longest frame body (type, id, body) a stream with
// limits lim accepts: the largest update message plus the fixed fields.
// Reads and quorum changes are far smaller.
func maxFrameLen(lim Limits) int64 {
	return lim.MaxBodyBytes() + frameHeaderLen + 64
}

// newFrame returns a buffer for a frame of type typ with the header's
// room reserved and capacity for bodyLen more bytes; finishFrame fills the
// header in.
func newFrame(typ byte, bodyLen int) []byte {
	b := make([]byte, frameHeaderLen, frameHeaderLen+bodyLen)
	b[4] = typ
	return b
}

// finishFrame writes the length and id into a frame built on newFrame.
func finishFrame(b []byte, id uint32) []byte {
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	binary.BigEndian.PutUint32(b[5:9], id)
	return b
}

// frameHeader is a decoded header.
type frameHeader struct {
	typ byte
	id  uint32
	n   int // body length
}

// parseFrameHeader decodes the fixed part of a frame, checking its length
// against max.
func parseFrameHeader(h *[frameHeaderLen]byte, max int64) (frameHeader, error) {
	n := binary.BigEndian.Uint32(h[0:4])
	if n < frameHeaderLen-4 {
		return frameHeader{}, fmt.Errorf("%w: length %d is shorter than its header", ErrFrame, n)
	}
	fh := frameHeader{typ: h[4], id: binary.BigEndian.Uint32(h[5:9]), n: int(n) - (frameHeaderLen - 4)}
	if int64(n) > max {
		return fh, &frameTooLargeError{h: fh, max: max}
	}
	return fh, nil
}

// readFrame reads one frame from r. buf is reused for the body when it is
// large enough; the returned body aliases it. A clean end of the stream
// between frames is io.EOF; one inside a frame io.ErrUnexpectedEOF.
func readFrame(r io.Reader, buf []byte, max int64) (frameHeader, []byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frameHeader{}, buf, err
	}
	fh, err := parseFrameHeader(&h, max)
	if err != nil {
		return fh, buf, err
	}
	if cap(buf) < fh.n {
		buf = make([]byte, fh.n)
	}
	body := buf[:fh.n]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fh, buf, err
	}
	return fh, body, nil
}

// appendStamp appends a stamp.
func appendStamp(b []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ns))
}

// parseOK decodes an ok answer's stamp.
func parseOK(body []byte) (int64, error) {
	if len(body) != 8 {
		return 0, fmt.Errorf("%w: ok answer of %d bytes, want 8", ErrFrame, len(body))
	}
	return int64(binary.BigEndian.Uint64(body)), nil
}

// entryUpdate is the update an entry answer carries for e. It is the one
// place a store.Entry becomes an update on the wire (and updateEntry the
// way back): a field added to the entry belongs in both.
func entryUpdate(e store.Entry) replication.Update {
	return replication.Update{Value: e.Value, Version: e.Version, Deleted: e.Deleted}
}

// updateEntry is entryUpdate's inverse.
func updateEntry(u replication.Update) store.Entry {
	return store.Entry{Value: u.Value, Version: u.Version, Deleted: u.Deleted}
}

// appendEntry appends an entry answer's body.
func appendEntry(b []byte, ns int64, e store.Entry, found bool) []byte {
	b = appendStamp(b, ns)
	if !found {
		return append(b, 0)
	}
	b = append(b, 1)
	return AppendUpdates(b, []replication.Update{entryUpdate(e)})
}

// parseEntry decodes an entry answer.
func parseEntry(body []byte, lim Limits) (ns int64, e store.Entry, found bool, err error) {
	if len(body) < 9 {
		return 0, e, false, fmt.Errorf("%w: entry answer of %d bytes", ErrFrame, len(body))
	}
	ns = int64(binary.BigEndian.Uint64(body))
	switch body[8] {
	case 0:
		if len(body) != 9 {
			return 0, e, false, fmt.Errorf("%w: %d bytes after a not-found answer", ErrFrame, len(body)-9)
		}
		return ns, e, false, nil
	case 1:
	default:
		return 0, e, false, fmt.Errorf("%w: found flag %d", ErrFrame, body[8])
	}
	us, err := DecodeUpdates(body[9:], lim)
	if err != nil {
		return 0, e, false, fmt.Errorf("%w: entry answer: %w", ErrFrame, err)
	}
	if len(us) != 1 {
		return 0, e, false, fmt.Errorf("%w: entry answer carries %d updates", ErrFrame, len(us))
	}
	return ns, updateEntry(us[0]), true, nil
}

// appendError appends an error answer's body.
func appendError(b []byte, status int, code, msg string) []byte {
	if len(code) > 255 {
		code = code[:255]
	}
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(status))
	b = append(b, byte(len(code)))
	b = append(b, code...)
	return append(b, msg...)
}

// parseError decodes an error answer into the StatusError the same answer
// over HTTP would have been.
func parseError(body []byte) (*StatusError, error) {
	if len(body) < 3 {
		return nil, fmt.Errorf("%w: error answer of %d bytes", ErrFrame, len(body))
	}
	status := int(binary.BigEndian.Uint16(body))
	n := int(body[2])
	if len(body) < 3+n {
		return nil, fmt.Errorf("%w: error code of %d bytes but %d follow", ErrFrame, n, len(body)-3)
	}
	msg := body[3+n:]
	if len(msg) > maxErrorMessage {
		return nil, fmt.Errorf("%w: error message of %d bytes, limit %d", ErrFrame, len(msg), maxErrorMessage)
	}
	if status < 300 || status > 599 {
		return nil, fmt.Errorf("%w: error answer with status %d", ErrFrame, status)
	}
	return &StatusError{Code: status, ErrCode: string(body[3 : 3+n]), Msg: string(msg)}, nil
}

// appendQuorum appends a quorum request's body.
func appendQuorum(b []byte, w, r int) []byte {
	b = binary.AppendUvarint(b, uint64(w))
	return binary.AppendUvarint(b, uint64(r))
}

// parseQuorum decodes a quorum request.
func parseQuorum(body []byte) (w, r int, err error) {
	wv, off, err := sliceUvarint(body, 0, "w")
	if err != nil {
		return 0, 0, err
	}
	rv, off, err := sliceUvarint(body, off, "r")
	if err != nil {
		return 0, 0, err
	}
	if off != len(body) {
		return 0, 0, fmt.Errorf("%w: %d bytes after a quorum request", ErrMalformed, len(body)-off)
	}
	if wv > replication.MaxNodes || rv > replication.MaxNodes {
		return 0, 0, fmt.Errorf("%w: w=%d r=%d", ErrMalformed, wv, rv)
	}
	return int(wv), int(rv), nil
}
