package cli

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `kvdb cluster` gives its nodes a random token and prints a curl line
// for PUT /config that works as pasted; a call without the token is
// refused. The old code ran without a token and printed no such line.
func TestClusterGeneratesToken(t *testing.T) {
	run := func() (string, func()) {
		base := freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- Cluster(ctx, []string{"--config", "w3r3", "--n", "3", "--base-port", strconv.Itoa(base)}, Env{Stdout: &out, Stderr: &errOut})
		}()
		// A hang check, not a speed assertion: the start includes an
		// election, and it once took over 10 s on a loaded machine.
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "press Ctrl-C") {
			select {
			case code := <-done:
				cancel()
				t.Fatalf("cluster exited %d before it started:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("cluster did not start:\n%s\nstderr:\n%s", out.String(), errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return out.String(), func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("exit %d", code)
			}
		}
	}
	out, stop := run()
	defer stop()
	m := regexp.MustCompile(`curl -X PUT (\S+) -H 'Authorization: Bearer (\S+)' -d '(\{[^']*\})'`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ready-to-paste curl line for PUT /config:\n%s", out)
	}
	url, token, body := m[1], m[2], m[3]
	if len(token) < 20 || !strings.Contains(out, "cluster token") {
		t.Fatalf("token %q too short or not announced:\n%s", token, out)
	}
	put := func(auth string) int {
		req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(""); code != http.StatusUnauthorized {
		t.Errorf("PUT /config without the token: %d, want 401", code)
	}
	if code := put("Bearer " + token); code != http.StatusOK {
		t.Errorf("PUT /config as printed: %d, want 200", code)
	}
	// Each cluster gets its own token.
	out2, stop2 := run()
	defer stop2()
	if m2 := regexp.MustCompile(`Bearer (\S+)'`).FindStringSubmatch(out2); m2 == nil || m2[1] == token {
		t.Errorf("second cluster's token %v, want a different one", m2)
	}
}
