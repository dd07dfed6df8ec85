// Package jsonstr appends Go strings as JSON string literals without
// reflection or allocation. The server's hot responses (set and get) and the
// Go client's request bodies use it: encoding/json's reflection and
// allocations showed in their profiles.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Invalid says what Append does with bytes that are not valid UTF-8.
type Invalid int

const (
	// Replace writes U+FFFD in their place, as encoding/json does: the
	// output always decodes to what encoding/json would produce.
	Replace Invalid = iota
	// Keep copies them as they are, so the reader sees them and can refuse
	// them (the client: the server answers invalid_utf8 rather than store
	// U+FFFD in their place).
	Keep
)

// Append appends s to dst as a JSON string literal, escaped as encoding/json
// escapes it: the quote, the backslash and control characters, and U+2028
// and U+2029 (valid JSON, but line terminators in JavaScript). Bytes that
// are not valid UTF-8 are handled as invalid says.
func Append(dst []byte, s string, invalid Invalid) []byte {
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
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1 && invalid == Replace:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
