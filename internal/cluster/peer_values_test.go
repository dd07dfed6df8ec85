package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
)

// setUnescaped sets through the public client, whose JSON body carries <,
// > and & as they are (valid JSON, and what most clients send), so a value
// of 1 MiB of '<' is a body of about 1 MiB, within the client limits.
func (c *client) setUnescaped(base, key, value string) reply {
	c.t.Helper()
	return c.set(base, key, value)
}

// Every value the client API accepts replicates: peer messages carry it
// without inflation. The old JSON peer protocol escaped each '<' to six
// bytes, so 1 MiB of '<' became a 6 MiB message that every follower
// refused with 413: the write got 503 (no follower acknowledged), the
// followers were marked failed so the writes after it got 503 as well,
// and the stuck hint (retried for ten minutes with the others of its
// batch) kept the followers behind the leader.
func TestLargeEscapedValuesReplicate(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w3r3"})
	cl := newClient(t)
	urls := c.URLs()
	leader := urls[0]
	// The client body limit (1 MiB + 1 KiB + 64 KiB by default) holds 1 MiB
	// of '<' but only a sixth as many control characters, which JSON
	// escapes in the client's body too (\u0001).
	const maxValue, maxBody = 1 << 20, 1<<20 + 1<<10 + 64<<10
	values := []struct{ key, value string }{
		{"lt", strings.Repeat("<", maxValue)},
		{"amp-gt", strings.Repeat("&>", maxValue/2)},
		{"ctl", strings.Repeat("\u0001", (maxBody-64)/len(`\u0001`))},
	}
	versions := map[string]uint64{}
	for _, v := range values {
		r := cl.setUnescaped(leader, v.key, v.value)
		mustStatus(t, fmt.Sprintf("write %d bytes of %q", len(v.value), v.value[:1]), r, http.StatusCreated)
		versions[v.key] = r.Version
	}
	for i := range 50 {
		k := fmt.Sprintf("small%d", i)
		r := cl.set(leader, k, value(i))
		mustStatus(t, "small write after the large ones", r, http.StatusCreated)
		versions[k] = r.Version
	}
	waitFor(t, 10*time.Second, "every follower to hold every key at the leader's version", func() bool {
		for k, v := range versions {
			if !converged(cl, urls, k, v) {
				return false
			}
		}
		return true
	})
	for _, v := range values {
		for _, u := range urls[1:] {
			if r := cl.localRead(u, v.key); r.Value != v.value {
				t.Fatalf("%s on %s: %d bytes differ from the %d written", v.key, u, len(r.Value), len(v.value))
			}
		}
	}
	resp, err := cl.hc.Get(leader + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"kvdb_replication_refused_total 0", "kvdb_hints 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("leader /metrics lacks %q", want)
		}
	}
}
