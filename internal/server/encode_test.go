package server

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzEncode: the hand-written encoders decode to exactly what
// encoding/json's output decodes to, for any strings (invalid UTF-8,
// control characters, quotes, U+2028 included).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\t\r\n", "ünïcödé ✓ 😀", "bad \xff\xfe utf8", "\u2028\u2029", "<html>&amp;"} {
		f.Add(s, s+"-value", uint64(7))
	}
	f.Fuzz(func(t *testing.T, key, value string, version uint64) {
		check := func(name string, mine []byte, v any) {
			std, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var a, b map[string]any
			if err := json.Unmarshal(mine, &a); err != nil {
				t.Fatalf("%s: hand-written output is not JSON: %v\n%q", name, err, mine)
			}
			if err := json.Unmarshal(std, &b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: decodes to %v, encoding/json's to %v", name, a, b)
			}
		}
		g := GetResponse{Key: key, Value: value, Version: version, Node: "node1"}
		check("get", g.appendJSON(nil), g)
		s := SetResponse{Key: key, Version: version, Node: value, Coordinator: value, Acks: 3, W: 5}
		check("set", s.appendJSON(nil), s)
	})
}

func BenchmarkAppendGet(b *testing.B) {
	g := GetResponse{Key: "user:1234", Value: "a value of about forty bytes, quite usual", Version: 123456, Node: "node3"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.appendJSON(buf[:0])
	}
}
