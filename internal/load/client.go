package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kvdb/kvdb/client"
)

// Client sends the load tester's requests through the public client
// (github.com/kvdb/kvdb/client), one attempt each, to the node the
// schedule chose, and turns every outcome into a Reply for the history.
type Client struct {
	c *client.Client
}

// NewHTTPClient returns an HTTP client that keeps up to maxConns idle
// connections per node.
func NewHTTPClient(maxConns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = maxConns
	return &http.Client{Transport: tr}
}

// NewClient sends through hc. A follower's 307 is recorded, not chased
// (except by SetFollow), and no request is retried: the history holds what
// each request did.
func NewClient(hc *http.Client) *Client {
	c, err := client.New(client.Config{HTTPClient: hc, Retry: client.NoRetry()})
	if err != nil {
		panic(fmt.Sprintf("load: a fixed client config is invalid: %v", err))
	}
	return &Client{c: c}
}

// Reply is the outcome of one request.
type Reply struct {
	// Status is the HTTP status, 0 if no response arrived.
	Status  int
	Value   string
	Version uint64
	// Node is the node id the response names.
	Node string
	// Err is empty on success (201 set; 200 delete; 200 or 404 not_found
	// get), else
	// the server's error text or a transport error prefixed "timeout: "
	// or "network: ".
	Err string
}

// Set writes key=value through the node at base; a 307 is the answer.
func (c *Client) Set(ctx context.Context, base, key, value string) Reply {
	res, err := c.c.Set(ctx, key, value, client.At(base), client.NoRedirect())
	if err != nil {
		return failed(ctx, err)
	}
	return Reply{Status: http.StatusCreated, Version: res.Version, Node: res.Node}
}

// SetFollow writes key=value through the node at base, following a
// follower's 307 to the leader (client.DefaultMaxRedirects hops, one
// attempt). It also returns the base URL of the node that answered: the
// leader's after a redirect.
func (c *Client) SetFollow(ctx context.Context, base, key, value string) (Reply, string) {
	res, err := c.c.Set(ctx, key, value, client.At(base))
	if err != nil {
		return failed(ctx, err), ""
	}
	return Reply{Status: http.StatusCreated, Version: res.Version, Node: res.Node}, res.Endpoint
}

// Delete deletes key through the node at base; a 307 is the answer.
func (c *Client) Delete(ctx context.Context, base, key string) Reply {
	res, err := c.c.Delete(ctx, key, client.At(base), client.NoRedirect())
	if err != nil {
		return failed(ctx, err)
	}
	return Reply{Status: http.StatusOK, Version: res.Version, Node: res.Node}
}

// DeleteFollow deletes key through the node at base, following a
// follower's 307 to the leader as SetFollow does, and returns the base URL
// of the node that answered.
func (c *Client) DeleteFollow(ctx context.Context, base, key string) (Reply, string) {
	res, err := c.c.Delete(ctx, key, client.At(base))
	if err != nil {
		return failed(ctx, err), ""
	}
	return Reply{Status: http.StatusOK, Version: res.Version, Node: res.Node}, res.Endpoint
}

// Get reads key through the node at base. A missing key (404 not_found)
// is an answer, not an error.
func (c *Client) Get(ctx context.Context, base, key string) Reply {
	res, err := c.c.Get(ctx, key, client.At(base))
	switch {
	case errors.Is(err, client.ErrNotFound):
		return Reply{Status: http.StatusNotFound}
	case err != nil:
		return failed(ctx, err)
	}
	return Reply{Status: http.StatusOK, Value: res.Value, Version: res.Version, Node: res.Node}
}

// Health fetches the node's /health document. ready is true when the node
// answered 200; a node still starting or catching up answers 503 with the
// same document.
func (c *Client) Health(ctx context.Context, base string) (doc json.RawMessage, ready bool, err error) {
	h, err := c.c.Health(ctx, client.At(base))
	switch {
	case err == nil:
		return h.Raw, true, nil
	case errors.Is(err, client.ErrNotReady) && h.Raw != nil:
		return h.Raw, false, nil
	}
	if e, ok := errors.AsType[*client.Error](err); ok {
		return nil, false, fmt.Errorf("%s/health: status %d, not a health document: %w", base, e.Status, err)
	}
	return nil, false, err
}

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.c.Close() }

// failed records a failed request: the status and the server's text of an
// answer, or the class of a transport failure.
func failed(ctx context.Context, err error) Reply {
	e, ok := errors.AsType[*client.Error](err)
	switch {
	case !ok:
		return Reply{Err: transportError(ctx, err)}
	case e.Code == client.CodeBadResponse:
		return Reply{Status: e.Status, Err: "bad response: " + e.Message}
	case e.Message != "":
		return Reply{Status: e.Status, Err: e.Message}
	}
	return Reply{Status: e.Status, Err: strings.TrimSpace(http.StatusText(e.Status) + " " + e.Location)}
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
