package replication

import (
	"strings"
	"testing"
	"time"
)

func TestParseDelays(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in   string
		want Delays
	}{
		{"paper", Delays{Name: "paper", Sequential: true, Gap: 200 * ms, Apply: 100 * ms, Read: 50 * ms}},
		{"  paper ", PaperDelays()},
		{"none", Delays{Name: "none"}},
		{"", Delays{Name: "none"}},
		{"paper*1", PaperDelays()},
		{"paper*0.1", Delays{Name: "paper*0.1", Sequential: true, Gap: 20 * ms, Apply: 10 * ms, Read: 5 * ms}},
		{"paper*2", Delays{Name: "paper*2", Sequential: true, Gap: 400 * ms, Apply: 200 * ms, Read: 100 * ms}},
		{"paper*0", Delays{Name: "paper*0", Sequential: true}},
		{"gap=200ms,apply=100ms,read=50ms", Delays{Name: "custom", Sequential: true, Gap: 200 * ms, Apply: 100 * ms, Read: 50 * ms}},
		{"gap=2ms,apply=1ms,read=1ms,sequential=false", Delays{Name: "custom", Gap: 2 * ms, Apply: ms, Read: ms}},
		{"sequential=true", Delays{Name: "custom", Sequential: true}},
		{"read=5ms", Delays{Name: "custom", Sequential: true, Read: 5 * ms}},
		{"gap=0s", Delays{Name: "custom"}},
		{" gap=1ms , apply=2ms ", Delays{Name: "custom", Sequential: true, Gap: ms, Apply: 2 * ms}},
		{"apply=1s,apply=3ms", Delays{Name: "custom", Sequential: true, Apply: 3 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDelays(tc.in)
			if err != nil {
				t.Fatalf("ParseDelays(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseDelays(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			// What String prints parses back to the same profile.
			back, err := ParseDelays(got.String())
			if err != nil || back != got {
				t.Fatalf("round trip via %q = %+v, %v; want %+v", got.String(), back, err, got)
			}
		})
	}
}

func TestParseDelaysErrors(t *testing.T) {
	for _, in := range []string{
		"Paper",
		"fast",
		"paper*",
		"paper*x",
		"paper*-1",
		"paper*101",
		"paper*Inf",
		"paper*NaN", // NaN passes "f < 0 || f > 100" and would scale to garbage
		"gap",
		"gap=",
		"gap=fast",
		"gap=-1ms",
		"gap=10", // a duration needs a unit
		"delay=1ms",
		"sequential=maybe",
		"gap=1ms,,apply=1ms",
	} {
		t.Run(in, func(t *testing.T) {
			d, err := ParseDelays(in)
			if err == nil {
				t.Fatalf("ParseDelays(%q) = %+v, want an error", in, d)
			}
			if !strings.Contains(err.Error(), "delays") {
				t.Errorf("error %q does not say it is about delays", err)
			}
		})
	}
}

func TestDelaysFloors(t *testing.T) {
	ms := time.Millisecond
	paper := PaperDelays()
	parallel := Delays{Name: "custom", Apply: 7 * ms, Read: 3 * ms}
	tests := []struct {
		name      string
		d         Delays
		n         int
		write     time.Duration
		readFloor time.Duration
	}{
		// The paper floors (docs/design.md, "Delay profiles and their floors").
		{"paper W5/R5", paper, 5, 1200 * ms, 50 * ms},
		{"paper W3/R3", paper, 3, 600 * ms, 50 * ms},
		{"paper W2/R2", paper, 2, 300 * ms, 50 * ms},
		{"paper W1/R1", paper, 1, 0, 0},
		{"paper W0", paper, 0, 0, 0},
		{"paper*0.1 W5", paper.Scale(0.1), 5, 120 * ms, 5 * ms},
		{"none W5", NoDelays(), 5, 0, 0},
		{"parallel W5: one apply", parallel, 5, 7 * ms, 3 * ms},
		{"parallel W1", parallel, 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.WriteFloor(tc.n); got != tc.write {
				t.Errorf("WriteFloor(%d) = %v, want %v", tc.n, got, tc.write)
			}
			if got := tc.d.ReadFloor(tc.n); got != tc.readFloor {
				t.Errorf("ReadFloor(%d) = %v, want %v", tc.n, got, tc.readFloor)
			}
		})
	}
}

func TestDelaysScaleAndString(t *testing.T) {
	if got := PaperDelays().Scale(1); got != PaperDelays() {
		t.Errorf("Scale(1) changed the profile: %+v", got)
	}
	c := Delays{Name: "custom", Gap: 10 * time.Millisecond}
	if got := c.Scale(0.5); got.Name != "custom" || got.Gap != 5*time.Millisecond {
		t.Errorf("custom Scale(0.5) = %+v", got)
	}
	for d, want := range map[Delays]string{
		PaperDelays():            "paper",
		NoDelays():               "none",
		PaperDelays().Scale(0.5): "paper*0.5",
		{Name: "custom", Sequential: true, Gap: time.Millisecond}: "gap=1ms,apply=0s,read=0s,sequential=true",
	} {
		if got := d.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", d, got, want)
		}
	}
}
