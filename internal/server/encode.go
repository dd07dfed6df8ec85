package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/kvdb/kvdb/internal/jsonstr"
)

// The hot responses (set and get) are encoded by hand into pooled buffers:
// encoding/json's reflection and allocations showed in the profiles. The
// output decodes to exactly what encoding/json would produce (FuzzEncode
// checks it); invalid UTF-8 becomes U+FFFD, as encoding/json does.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendString appends s as a JSON string, as encoding/json would.
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, jsonstr.Replace) }

// appendField appends ,"name": (or {"name": when first).
func appendField(dst []byte, name string, first bool) []byte {
	if first {
		dst = append(dst, '{')
	} else {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func (g *GetResponse) appendJSON(dst []byte) []byte {
	dst = appendField(dst, "key", true)
	dst = appendString(dst, g.Key)
	dst = appendField(dst, "value", false)
	dst = appendString(dst, g.Value)
	dst = appendField(dst, "version", false)
	dst = strconv.AppendUint(dst, g.Version, 10)
	dst = appendField(dst, "node", false)
	dst = appendString(dst, g.Node)
	return append(dst, '}', '\n')
}

func (r *SetResponse) appendJSON(dst []byte) []byte {
	dst = appendField(dst, "key", true)
	dst = appendString(dst, r.Key)
	dst = appendField(dst, "version", false)
	dst = strconv.AppendUint(dst, r.Version, 10)
	dst = appendField(dst, "node", false)
	dst = appendString(dst, r.Node)
	if r.Coordinator != "" {
		dst = appendField(dst, "coordinator", false)
		dst = appendString(dst, r.Coordinator)
	}
	dst = appendField(dst, "acks", false)
	dst = strconv.AppendInt(dst, int64(r.Acks), 10)
	dst = appendField(dst, "w", false)
	dst = strconv.AppendInt(dst, int64(r.W), 10)
	return append(dst, '}', '\n')
}

// appender is a response that encodes itself.
type appender interface{ appendJSON([]byte) []byte }

// writeFast writes v with code through a pooled buffer.
func writeFast(w http.ResponseWriter, code int, v appender) error {
	bp := bufPool.Get().(*[]byte)
	b := v.appendJSON((*bp)[:0])
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	_, err := w.Write(b)
	if cap(b) <= 64<<10 { // do not keep huge values' buffers
		*bp = b
		bufPool.Put(bp)
	}
	return err
}
