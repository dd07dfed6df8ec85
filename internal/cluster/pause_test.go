package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
)

// A paused node is up but silent: a request to it waits (a timeout, not a
// refused connection) and is answered after Resume; a write it missed
// while paused reaches it afterwards (hinted handoff).
func TestPauseResume(t *testing.T) {
	c, err := cluster.Start(t.Context(), cluster.Config{Preset: "leaderless-w3r3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	urls := c.URLs()
	cl, err := kvclient.New(kvclient.Config{Retry: kvclient.NoRetry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(2); err != nil {
		t.Fatal(err)
	}
	if !c.Paused(2) || c.Paused(1) {
		t.Fatal("Paused does not report node3 alone")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = cl.Health(ctx, kvclient.At(urls[2]))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("health of a paused node: %v, want a timeout", err)
	}
	// The others still serve (W=3 of the four running); the write
	// coordinated by node1 cannot reach node3 now.
	if _, err := cl.Set(t.Context(), "k", "during-pause", kvclient.At(urls[0])); err != nil {
		t.Fatalf("write through node1 while node3 is paused: %v", err)
	}
	// A request sent during the pause is answered after the resume.
	answered := make(chan error, 1)
	go func() {
		_, err := cl.Health(t.Context(), kvclient.At(urls[2]))
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a paused node answered: %v", err)
	case <-time.After(200 * time.Millisecond): // bounded: the check that nothing came back while paused
	}
	if err := c.Resume(2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("request held during the pause: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request held during the pause not answered 10 s after the resume")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := cl.LocalRead(t.Context(), "k", kvclient.At(urls[2]))
		if err == nil && got.Value == "during-pause" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node3 never received the write it missed while paused: %v %+v", err, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A paused leader is replaced; after the resume there is one leader that
// accepts writes and the old one follows.
func TestPauseLeader(t *testing.T) {
	c, err := cluster.Start(t.Context(), cluster.Config{Preset: "w3r3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	old, err := c.WaitLeader(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if l := c.Leader(); l >= 0 && l != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no other node leads 15 s after the leader was paused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Resume(old); err != nil {
		t.Fatal(err)
	}
	cl, err := kvclient.New(kvclient.Config{Endpoints: c.URLs(), Retry: kvclient.RetryPolicy{MaxAttempts: 20}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := cl.Set(ctx, "k", "v", kvclient.At(c.URLs()[old])); err != nil {
		t.Fatalf("write through the resumed old leader (following its redirect): %v", err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for c.Nodes()[old].Info().Role == "leader" && c.Leader() != old {
		if time.Now().After(deadline) {
			t.Fatal("the resumed old leader still believes it leads beside the new one")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoPause: a cluster started with NoPause serves as usual over ungated
// sockets and refuses Pause rather than pretending to pause a node.
func TestNoPause(t *testing.T) {
	c, err := cluster.Start(t.Context(), cluster.Config{Preset: "w5r1", NoPause: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	if err := c.Pause(1); err == nil || !strings.Contains(err.Error(), "NoPause") {
		t.Fatalf("Pause with NoPause: %v, want a refusal naming NoPause", err)
	}
	if c.Paused(1) {
		t.Fatal("node2 reported paused")
	}
	cl, err := kvclient.New(kvclient.Config{Retry: kvclient.NoRetry()})
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitLeader(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	urls := c.URLs()
	if _, err := cl.Set(t.Context(), "k", "v", kvclient.At(urls[leader])); err != nil {
		t.Fatalf("W=5 write: %v", err)
	}
	for i, u := range urls {
		got, err := cl.Get(t.Context(), "k", kvclient.At(u))
		if err != nil || got.Value != "v" {
			t.Fatalf("node%d: %+v, %v", i+1, got, err)
		}
	}
}
