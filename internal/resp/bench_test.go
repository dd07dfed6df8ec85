package resp

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// BenchmarkPipelinedGet measures the server's own cost per GET (framing
// guard, dispatch, metrics, reply) over loopback, pipelines of 100,
// against the in-memory fake backend.
func BenchmarkPipelinedGet(b *testing.B) {
	benchPipelined(b, "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
}

// BenchmarkPipelinedSet is the same for SET of a 3-byte value.
func BenchmarkPipelinedSet(b *testing.B) {
	benchPipelined(b, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nxxx\r\n")
}

func benchPipelined(b *testing.B, cmd string) {
	fb := newFake()
	fb.data["key"] = "xxx"
	s, err := New(Config{}, fb)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	defer s.Close(b.Context()) //nolint:errcheck
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const depth = 100
	batch := strings.Repeat(cmd, depth)
	r := bufio.NewReader(c)
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		if _, err := c.Write([]byte(batch)); err != nil {
			b.Fatal(err)
		}
		for range depth {
			line, err := r.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if line[0] == '$' {
				if _, err := r.ReadSlice('\n'); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
