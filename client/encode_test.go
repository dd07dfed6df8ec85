package client

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzAppendJSONString: every valid UTF-8 string decodes back to itself.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "v", `a"b\c`, "\x00\x1f\n\r\t", "é😀\u2028\u2029", "</script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Fatalf("%q encoded as %s decodes to %q, %v", s, b, got, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 35 * time.Millisecond}
	for attempt, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 35 * time.Millisecond, 9: 35 * time.Millisecond} {
		for range 20 {
			if d := p.backoff(attempt); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want %v..%v", attempt, d, want/2, want)
			}
		}
	}
}
