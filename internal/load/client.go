package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxBody caps how much of a response body is read.
const maxBody = 1 << 20

// Client speaks kvdb's client API (DESIGN.md section 2).
type Client struct {
	http *http.Client
}

// NewHTTPClient returns an HTTP client that never follows redirects (a
// follower's 307 is recorded, not chased) and keeps up to maxConns idle
// connections per node.
func NewHTTPClient(maxConns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = maxConns
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewClient wraps hc, which must not follow redirects (see NewHTTPClient).
func NewClient(hc *http.Client) *Client { return &Client{http: hc} }

// Reply is the outcome of one request.
type Reply struct {
	// Status is the HTTP status, 0 if no response arrived.
	Status  int
	Value   string
	Version uint64
	// Node is the node id the response names.
	Node string
	// Err is empty on success (201 set; 200 or 404 get), else the server's
	// error text or a transport error prefixed "timeout: " or "network: ".
	Err string
}

// apiBody is the JSON shape of every client API response.
type apiBody struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Node    string `json:"node"`
	Error   string `json:"error"`
}

// Set writes key=value through the node at base.
func (c *Client) Set(ctx context.Context, base, key, value string) Reply {
	body, err := json.Marshal(map[string]string{"key": key, "value": value})
	if err != nil {
		return Reply{Err: "network: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/set", bytes.NewReader(body))
	if err != nil {
		return Reply{Err: "network: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, http.StatusCreated)
}

// Get reads key through the node at base.
func (c *Client) Get(ctx context.Context, base, key string) Reply {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/get/"+url.PathEscape(key), nil)
	if err != nil {
		return Reply{Err: "network: " + err.Error()}
	}
	return c.do(req, http.StatusOK, http.StatusNotFound)
}

// Health fetches the node's /health document. ready is true when the node
// answered 200; a node still starting or catching up answers 503 with the
// same document.
func (c *Client) Health(ctx context.Context, base string) (doc json.RawMessage, ready bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, false, err
	}
	if !json.Valid(b) {
		return nil, false, fmt.Errorf("%s/health: status %d, not a health document", base, resp.StatusCode)
	}
	return json.RawMessage(b), resp.StatusCode == http.StatusOK, nil
}

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// do sends req; ok lists the statuses that are answers, not errors.
func (c *Client) do(req *http.Request, ok ...int) Reply {
	resp, err := c.http.Do(req)
	if err != nil {
		return Reply{Err: transportError(req.Context(), err)}
	}
	defer resp.Body.Close()
	r := Reply{Status: resp.StatusCode}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		r.Err = "reading body: " + transportError(req.Context(), err)
		return r
	}
	var b apiBody
	jerr := json.Unmarshal(raw, &b)
	r.Node = b.Node
	switch {
	case resp.StatusCode == http.StatusNotFound && slices.Contains(ok, resp.StatusCode):
		// absent key: a valid answer
	case slices.Contains(ok, resp.StatusCode) && jerr != nil:
		r.Err = "bad response: " + jerr.Error()
	case slices.Contains(ok, resp.StatusCode):
		r.Value, r.Version = b.Value, b.Version
	case b.Error != "":
		r.Err = b.Error
	default:
		r.Err = strings.TrimSpace(http.StatusText(resp.StatusCode) + " " + resp.Header.Get("Location"))
	}
	return r
}

// transportError classifies a failed round trip.
func transportError(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return "timeout: " + err.Error()
	}
	return "network: " + err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// elapsedUS converts t to microseconds since the Unix epoch on the run's
// clock: t0's wall time plus the monotonic time since t0.
func elapsedUS(t0 time.Time, t time.Time) int64 {
	return t0.UnixMicro() + t.Sub(t0).Microseconds()
}
