package server

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The hot responses (set and get) are encoded by hand into pooled buffers:
// encoding/json's reflection and allocations showed in the profiles. The
// output decodes to exactly what encoding/json would produce (FuzzEncode
// checks it); invalid UTF-8 becomes U+FFFD, as encoding/json does.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript; escape
		// them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

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
