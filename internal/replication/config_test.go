package replication

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("n%d", i+1), URL: fmt.Sprintf("http://n%d.test:8080", i+1)}
	}
	return ms
}

func validConfig() Config {
	return Config{Self: "n1", Members: members(5), Mode: LeaderFollower, Leader: "n1", W: 5, R: 1}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"leader-follower": LeaderFollower,
		"leader":          LeaderFollower,
		"leader_follower": LeaderFollower,
		"leaderless":      Leaderless,
	} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Leaderless", "raft", "follower"} {
		if got, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) = %q, want an error", in, got)
		}
	}
}

func TestConfigSetDefaults(t *testing.T) {
	c := Config{Self: "n2", Members: members(5)}
	c.SetDefaults()
	if c.Mode != LeaderFollower || c.Leader != "n1" || c.W != 5 || c.R != 1 ||
		c.Delays != NoDelays() || c.PeerTimeout != 2*time.Second || c.RetryFor != 10*time.Minute || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaulted config invalid: %v", err)
	}

	l := Config{Self: "n1", Members: members(3), Mode: Leaderless, W: 2, R: 2, Delays: PaperDelays()}
	l.SetDefaults()
	if l.Leader != "" || l.W != 2 || l.R != 2 || l.Delays != PaperDelays() {
		t.Fatalf("leaderless defaults overwrote settings: %+v", l)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string // substring; "" means valid
		invalid bool   // errors.Is(err, ErrInvalid)
	}{
		{name: "valid", mut: func(*Config) {}},
		{name: "single node", mut: func(c *Config) { c.Members = members(1); c.W = 1 }},
		{name: "leaderless without leader", mut: func(c *Config) { c.Mode = Leaderless; c.Leader = "" }},
		{name: "leaderless ignores a bogus leader", mut: func(c *Config) { c.Mode = Leaderless; c.Leader = "zz" }},
		{name: "https member", mut: func(c *Config) { c.Members[2].URL = "https://n3.test" }},
		{name: "W=1 R=5", mut: func(c *Config) { c.W, c.R = 1, 5 }},
		{name: "empty members", mut: func(c *Config) { c.Members = nil }, wantErr: "no members"},
		{name: "duplicate IDs", mut: func(c *Config) { c.Members[3].ID = "n2" }, wantErr: `"n2" listed twice`},
		{name: "empty member ID", mut: func(c *Config) { c.Members[4].ID = "" }, wantErr: "empty id"},
		{name: "self missing", mut: func(c *Config) { c.Self = "n9" }, wantErr: `self id "n9" is not among the members`},
		{name: "self empty", mut: func(c *Config) { c.Self = "" }, wantErr: "self id is empty"},
		{name: "URL without scheme", mut: func(c *Config) { c.Members[1].URL = "n2.test:8080" }, wantErr: "not an http(s) base URL"},
		{name: "URL with other scheme", mut: func(c *Config) { c.Members[1].URL = "ftp://n2.test" }, wantErr: "not an http(s) base URL"},
		{name: "URL without host", mut: func(c *Config) { c.Members[1].URL = "http://" }, wantErr: "not an http(s) base URL"},
		{name: "URL unparsable", mut: func(c *Config) { c.Members[1].URL = "http://a b:%zz" }, wantErr: "not an http(s) base URL"},
		{name: "W=0", mut: func(c *Config) { c.W = 0 }, wantErr: "w=0 outside 1..5", invalid: true},
		{name: "W>N", mut: func(c *Config) { c.W = 6 }, wantErr: "w=6 outside 1..5", invalid: true},
		{name: "W<0", mut: func(c *Config) { c.W = -1 }, wantErr: "w=-1", invalid: true},
		{name: "R=0", mut: func(c *Config) { c.R = 0 }, wantErr: "r=0 outside 1..5", invalid: true},
		{name: "R>N", mut: func(c *Config) { c.R = 6 }, wantErr: "r=6 outside 1..5", invalid: true},
		{name: "unknown mode", mut: func(c *Config) { c.Mode = "raft" }, wantErr: `mode "raft"`},
		{name: "leader not member", mut: func(c *Config) { c.Leader = "n9" }, wantErr: `leader "n9" is not among the members`},
		{name: "leader empty in leader-follower", mut: func(c *Config) { c.Leader = "" }, wantErr: `leader "" is not among`},
		{name: "negative peer timeout", mut: func(c *Config) { c.PeerTimeout = -1 }, wantErr: "timeouts must not be negative"},
		{name: "negative retry", mut: func(c *Config) { c.RetryFor = -time.Second }, wantErr: "timeouts must not be negative"},
		{name: "negative delay", mut: func(c *Config) { c.Delays = Delays{Name: "custom", Apply: -1} }, wantErr: "delays must not be negative"},
		{name: "too many members", mut: func(c *Config) { c.Members = members(MaxNodes + 1); c.W = 1 }, wantErr: "at most 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %q, want it to contain %q", err, tc.wantErr)
			}
			if tc.invalid && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want errors.Is(err, ErrInvalid)", err)
			}
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{Self: "x", Members: []Member{{ID: "a", URL: "bad"}, {ID: "a", URL: "http://h"}}, Mode: "m", W: 9, R: 1}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	for _, want := range []string{"listed twice", "not an http(s) base URL", `self id "x"`, `mode "m"`, "w=9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, missing %q", err, want)
		}
	}
}

func TestConfigIndexAndN(t *testing.T) {
	c := validConfig()
	if c.N() != 5 {
		t.Errorf("N = %d", c.N())
	}
	for id, want := range map[string]int{"n1": 0, "n3": 2, "n5": 4, "n6": -1, "": -1} {
		if got := c.Index(id); got != want {
			t.Errorf("Index(%q) = %d, want %d", id, got, want)
		}
	}
}
