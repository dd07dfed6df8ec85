package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// KVDBTarget drives a kvdb cluster through its client API: writes go to
// the leader (leader-follower) or round robin to every node (leaderless),
// reads round robin to every node. It keeps one pool of keep-alive
// connections, as many per node as there are clients.
type KVDBTarget struct {
	client     *http.Client
	transport  *http.Transport
	urls       []string
	leaderless bool
	next       atomic.Uint64
}

// NewKVDBTarget returns a target for the nodes at urls (the leader first
// in leader-follower mode), sized for concurrency clients.
func NewKVDBTarget(urls []string, leaderless bool, concurrency int) *KVDBTarget {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: max(concurrency, 2),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &KVDBTarget{
		client: &http.Client{
			Transport: tr,
			// A 307 from a follower means the write went to the wrong
			// node: count it as an error, don't follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport:  tr,
		urls:       append([]string(nil), urls...),
		leaderless: leaderless,
	}
}

// Op is the benchdrive operation: POST /set or GET /get/{key}.
func (t *KVDBTarget) Op(ctx context.Context, write bool, key string, value []byte) error {
	n := t.next.Add(1)
	node := t.urls[n%uint64(len(t.urls))]
	var (
		req *http.Request
		err error
	)
	want := http.StatusOK
	if write {
		if !t.leaderless {
			node = t.urls[0]
		}
		body := appendSetBody(make([]byte, 0, len(key)+len(value)+24), key, value)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, node+"/set", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		want = http.StatusCreated
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, node+"/get/"+url.PathEscape(key), nil)
	}
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	// Read the whole body so the connection goes back to the pool.
	_, cerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return cerr
}

// WaitReady polls every node's GET /health until all answer 200 (a node
// still starting or catching up answers 503), or timeout passes.
func (t *KVDBTarget) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, u := range t.urls {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/health", nil)
			if err != nil {
				return err
			}
			resp, err := t.client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready after %s: %v", u, timeout, err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// Close drops the idle connections.
func (t *KVDBTarget) Close() { t.transport.CloseIdleConnections() }

// appendSetBody appends {"key":key,"value":value} as JSON.
func appendSetBody(b []byte, key string, value []byte) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, key)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, string(value))
	return append(b, '}')
}

// appendJSONString appends s as a JSON string (invalid UTF-8 becomes
// U+FFFD, as encoding/json does).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
