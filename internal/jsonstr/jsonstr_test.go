package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzAppend: with Replace the output is exactly encoding/json's encoding of
// s (its escaping of <, > and & aside, which Append leaves out); with Keep a
// valid string's output is the same, and any output still decodes.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "v", `a"b\c`, "\x00\x1f\n\r\t\x7f", "é😀\u2028\u2029", "</script>&", "col\xff", "\xed\xa0\x80", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.ReplaceAll(want, []byte(`\u003c`), []byte("<"))
		want = bytes.ReplaceAll(want, []byte(`\u003e`), []byte(">"))
		want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
		if got := Append(nil, s, Replace); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q, Replace) = %s, encoding/json %s", s, got, want)
		}
		kept := Append(nil, s, Keep)
		if utf8.ValidString(s) && !bytes.Equal(kept, want) {
			t.Fatalf("valid %q: Append(Keep) = %s, Append(Replace) = %s", s, kept, want)
		}
		var back string
		if err := json.Unmarshal(kept, &back); err != nil {
			t.Fatalf("Append(%q, Keep) = %q does not decode: %v", s, kept, err)
		}
	})
}

func TestKeepCopiesInvalidBytes(t *testing.T) {
	got := Append(nil, "col\xff", Keep)
	if want := []byte("\"col\xff\""); !bytes.Equal(got, want) {
		t.Fatalf("Append(Keep) = %q, want %q", got, want)
	}
	if got := Append(nil, "col\xff", Replace); string(got) != `"col\ufffd"` {
		t.Fatalf("Append(Replace) = %s", got)
	}
}
