package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// A client that sends a write and half-closes its side at once still gets
// the write coordinated to W copies (and, here, its 201). The old code ran
// the replication under the client's context: the half-close cancelled it
// and the client got 503 although the write went on reaching nodes.
func TestWriteSurvivesClientHalfClose(t *testing.T) {
	c, err := cluster.Start(context.Background(), cluster.Config{Preset: "w5r1", Node: node.Config{Replication: replication.Config{Delays: replication.PaperDelays().Scale(0.1)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	urls := c.URLs()
	body := `{"key":"halfclose","value":"v"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(urls[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /set HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the half-closed write: %v", err)
	}
	var got struct {
		Acks  int    `json:"acks"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || got.Acks != 5 {
		t.Errorf("half-closed write: status %d acks %d (%s), want 201 with 5 acks", resp.StatusCode, got.Acks, got.Error)
	}
	// Every node holds it (W=5), whatever the client saw.
	hc := cluster.Client()
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for _, u := range urls {
		for {
			r, err := hc.Get(u + "/local_read/halfclose")
			ok := err == nil && r.StatusCode == http.StatusOK
			if err == nil {
				r.Body.Close()
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the half-closed client's write", u)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
