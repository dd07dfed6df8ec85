package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tidwall/redcon"
)

var testLimits = limits{maxArgs: 8, maxCommand: 256, maxInline: 64}

// scanAll runs the framer over chunks and returns the command ends and the
// error, with its offset in the whole stream.
func scanAll(lim limits, chunks ...[]byte) (bounds []int, valid int, err error) {
	f := framer{lim: lim}
	base := 0
	for _, c := range chunks {
		n, err := f.scan(c, func(at int) { bounds = append(bounds, base+at) })
		if err != nil {
			return bounds, base + n, err
		}
		base += len(c)
	}
	return bounds, base, nil
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name   string
		in     string
		bounds []int
		err    string // substring of the protocol error, "" for none
	}{
		{"one command", "*1\r\n$4\r\nPING\r\n", []int{14}, ""},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []int{14, 34}, ""},
		{"empty argument", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []int{20}, ""},
		{"incomplete", "*2\r\n$3\r\nGET\r\n$1\r", nil, ""},
		{"inline", "PING\r\nECHO hi\n", []int{6, 14}, ""},
		{"empty line", "\r\n", []int{2}, ""},
		{"count zero", "*0\r\n", nil, "invalid multibulk length"},
		{"negative count", "*-1\r\n", nil, "invalid multibulk length"},
		{"count not a number", "*x\r\n", nil, "invalid multibulk length"},
		{"count without digits", "*\r\n", nil, "invalid multibulk length"},
		{"too many arguments", "*9\r\n", nil, "too many arguments"},
		{"count overflow", "*99999999999999999999999\r\n", nil, "invalid multibulk length"},
		{"bulk length overflow", "*1\r\n$9223372036854775807\r\nx", nil, "invalid bulk length"},
		{"bulk length over the limit", "*1\r\n$257\r\n", nil, "invalid bulk length"},
		{"negative bulk length", "*1\r\n$-1\r\n", nil, "invalid bulk length"},
		{"missing dollar", "*1\r\n:4\r\nPING\r\n", nil, "expected '$', got ':'"},
		{"bad terminator", "*1\r\n$4\r\nPINGxx", nil, "invalid bulk length"},
		{"no LF after count", "*1\rx", nil, "invalid multibulk length"},
		{"command over the limit", "*2\r\n$200\r\n" + strings.Repeat("a", 200) + "\r\n$60\r\n", nil, "command too large"},
		{"inline over the limit", long, nil, "too big inline request"},
		{"valid, then bad", "*1\r\n$4\r\nPING\r\n*x", []int{14}, "invalid multibulk length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			// The same answer whatever the chunking.
			for split := 0; split <= len(in); split++ {
				bounds, _, err := scanAll(testLimits, in[:split], in[split:])
				if tc.err == "" && err != nil {
					t.Fatalf("split %d: unexpected error %v", split, err)
				}
				if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
					t.Fatalf("split %d: error %v, want one containing %q", split, err, tc.err)
				}
				if !equalInts(bounds, tc.bounds) {
					t.Fatalf("split %d: command ends %v, want %v", split, bounds, tc.bounds)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGuardReaderDeliversWholeCommands: given room, every read ends on a
// command boundary; a protocol error comes after the valid commands before
// it, with its reply written.
func TestGuardReaderDeliversWholeCommands(t *testing.T) {
	cmd := "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" // 21 bytes
	in := strings.Repeat(cmd, 10) + "*x\r\n"
	var out bytes.Buffer
	g := newGuardReader(strings.NewReader(in), &out, testLimits)
	var got []byte
	p := make([]byte, 50)
	for {
		n, err := g.Read(p)
		if n > 0 {
			if n%len(cmd) != 0 {
				t.Fatalf("read of %d bytes splits a command", n)
			}
			got = append(got, p[:n]...)
		}
		if err != nil {
			var pe *errProtocol
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a protocol error", err)
			}
			break
		}
	}
	if string(got) != strings.Repeat(cmd, 10) {
		t.Fatalf("delivered %q", got)
	}
	if want := "-ERR Protocol error: invalid multibulk length\r\n"; out.String() != want {
		t.Fatalf("reply %q, want %q", out.String(), want)
	}
}

// FuzzGuard feeds arbitrary bytes, in arbitrary pieces, through the guard
// into redcon's reader: nothing panics, the framer's answer does not depend
// on the chunking, and every command redcon parses is within the limits.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"PING\r\nECHO 'a b'\r\n",
		"*1\r\n$9223372036854775807\r\nx",
		"*1\r\n$18446744073709551615\r\n",
		"*2\r\n$-5\r\n",
		"*99999999999\r\n",
		"\"unbalanced\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		lim := testLimits
		whole, _, wholeErr := scanAll(lim, data)
		mid := len(data) / 2
		split, _, splitErr := scanAll(lim, data[:mid], data[mid:])
		if !equalInts(whole, split) || (wholeErr == nil) != (splitErr == nil) {
			t.Fatalf("chunking changed the answer: %v/%v vs %v/%v", whole, wholeErr, split, splitErr)
		}
		// Through the guard into redcon, in pieces of step bytes.
		var r io.Reader = bytes.NewReader(data)
		if step > 0 {
			r = iotest.OneByteReader(r)
		}
		g := newGuardReader(r, io.Discard, lim)
		rd := redcon.NewReader(g)
		for range 1000 {
			cmd, err := rd.ReadCommand()
			if err != nil {
				return
			}
			if len(cmd.Args) > lim.maxArgs {
				t.Fatalf("command of %d arguments passed the guard", len(cmd.Args))
			}
			size := 0
			for _, a := range cmd.Args {
				size += len(a)
			}
			if int64(size) > lim.maxCommand {
				t.Fatalf("command of %d bytes passed the guard", size)
			}
		}
	})
}
