package load

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"60": time.Minute, "0.5": 500 * time.Millisecond, " 30s ": 30 * time.Second, "2m": 2 * time.Minute,
	}
	for in, want := range tests {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1e300", "NaN", "10 s"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): no error", in)
		}
	}
}

func TestParseNodes(t *testing.T) {
	got, err := ParseNodes(" 127.0.0.1:8080/, https://h:1 ,,")
	if err != nil || !slices.Equal(got, []string{"http://127.0.0.1:8080", "https://h:1"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, in := range []string{"", " , ", "ftp://x", "http://"} {
		if _, err := ParseNodes(in); err == nil {
			t.Errorf("ParseNodes(%q): no error", in)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	if err := valid.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(*Config){
		"mode":         func(c *Config) { c.Mode = "raft" },
		"nodes":        func(c *Config) { c.Nodes = nil },
		"read-from":    func(c *Config) { c.ReadFrom = "somewhere" },
		"followers":    func(c *Config) { c.ReadFrom, c.Nodes = ReadFollowers, c.Nodes[:1] },
		"write-ratio":  func(c *Config) { c.WriteRatio = -0.1 },
		"duration":     func(c *Config) { c.Duration = -time.Second },
		"qps":          func(c *Config) { c.QPS = 0 },
		"requests":     func(c *Config) { c.QPS, c.Duration = 0.5, time.Second },
		"max-inflight": func(c *Config) { c.MaxInFlight = 0 },
		"timeout":      func(c *Config) { c.Timeout = 0 },
		"keys":         func(c *Config) { c.Keys.Keys = 0 },
	}
	for name, mutate := range tests {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	var cfg Config
	now := time.Date(2025, 6, 1, 12, 30, 45, 0, time.UTC)
	cfg.SetDefaults(now)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.OutDir != "results/load-20250601-123045" || !strings.HasPrefix(cfg.Keys.Prefix, cfg.RunID+"-") || cfg.Check.VizPath != "results/load-20250601-123045/"+VizFile {
		t.Errorf("defaults %+v", cfg)
	}
	if cfg.WriteRatio != 0 {
		t.Errorf("zero write ratio (reads only) must stay zero")
	}
}

func TestTargets(t *testing.T) {
	cfg := DefaultConfig()
	n := cfg.Nodes
	cases := []struct {
		mode, readFrom string
		writes, reads  []string
	}{
		{ModeLeader, ReadAll, n[:1], n},
		{ModeLeader, ReadLeader, n[:1], n[:1]},
		{ModeLeader, ReadFollowers, n[:1], n[1:]},
		{ModeLeaderless, ReadAll, n, n},
	}
	for _, c := range cases {
		cfg.Mode, cfg.ReadFrom = c.mode, c.readFrom
		if !slices.Equal(cfg.writeNodes(), c.writes) || !slices.Equal(cfg.readNodes(), c.reads) {
			t.Errorf("%s/%s: writes %v reads %v", c.mode, c.readFrom, cfg.writeNodes(), cfg.readNodes())
		}
	}
}
