package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config and RetryPolicy.
const (
	DefaultTimeout             = 10 * time.Second
	DefaultMaxIdleConnsPerHost = 64
	DefaultMaxRedirects        = 3
	DefaultMaxAttempts         = 3
	DefaultInitialBackoff      = 25 * time.Millisecond
	DefaultMaxBackoff          = time.Second
)

// Config configures a Client. The zero value of every field but Endpoints
// means its default (SetDefaults).
type Config struct {
	// Endpoints are the nodes' base URLs, e.g. "http://127.0.0.1:8001". A
	// call without At goes to the endpoint in use: the first, until an
	// attempt finds it unreachable or not ready (see RetryPolicy), then
	// the next. It may be empty if every call names its node with At.
	Endpoints []string
	// HTTPClient, if set, carries every request (its Transport, Timeout
	// and Jar). Its CheckRedirect is ignored: net/http never follows a
	// redirect for this client; Set follows a leader's 307 itself (see
	// MaxRedirects).
	HTTPClient *http.Client
	// Timeout bounds each attempt, reading the answer included, when
	// HTTPClient is nil (default 10s; negative: none, the ctx only).
	Timeout time.Duration
	// MaxIdleConnsPerHost is how many kept-alive connections to each node
	// the client keeps when HTTPClient is nil (default 64). A load
	// generator sets it to its concurrency.
	MaxIdleConnsPerHost int
	// Token is the cluster token, sent as "Authorization: Bearer <token>"
	// with SetConfig only. Without one, SetConfig works only from a
	// loopback address to a node that has no token either.
	Token string
	// MaxRedirects bounds how many 307s from followers a Set follows to
	// the leader (default 3; negative: none, the 307 is returned as an
	// *Error with Code CodeNotLeader and Location).
	MaxRedirects int
	// Retry says which failed attempts are tried again.
	Retry RetryPolicy
}

// RetryPolicy says which failed attempts a call makes again, after a
// backoff, within MaxAttempts and the call's ctx.
//
// Always retried (nothing can have been applied):
//   - an attempt that could not connect (dial failure: refused, no route,
//     DNS); a call without At then moves to the next endpoint;
//   - 503 catching_up, leader_catching_up, shutting_down and
//     leader_unavailable (a call without At moves to the next endpoint
//     too). During a failover writes get leader_unavailable until a new
//     leader is elected, then leader_catching_up until it holds every
//     acknowledged write; a Set retried through them lands once the new
//     leader accepts writes (give it MaxAttempts and a ctx that cover an
//     election, about 2 s with the defaults).
//
// Retried only for calls that are safe to repeat — Get, LocalRead, Health,
// Config and SetConfig (PUT /config is idempotent) — or for Set when
// RetryUnknownWrites is on:
//   - a transport failure after the request was sent (timeout, reset);
//   - 503 quorum_not_reached, timeout and config_incomplete.
//
// A Set whose attempt failed that way has an unknown outcome: some
// replicas may have applied it, and replication of it continues. Sending
// it again writes the value again under a new version.
//
// Never retried: any other status (4xx, 404 not found, 307 not followed,
// 500, 503 storage_failure), an unreadable answer, and the end of the
// call's ctx. Health answers 503 with its document while a node catches
// up; that is returned, not retried.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included
	// (default 3; 1 disables retries). Redirects followed are not
	// attempts.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt (default
	// 25ms); each later wait doubles, up to MaxBackoff (default 1s). Each
	// wait is jittered to between half and all of its value.
	InitialBackoff, MaxBackoff time.Duration
	// RetryUnknownWrites lets Set retry the failures whose outcome is
	// unknown (see above). Off by default.
	RetryUnknownWrites bool
}

// NoRetry is a RetryPolicy that makes every call a single attempt.
func NoRetry() RetryPolicy { return RetryPolicy{MaxAttempts: 1} }

// SetDefaults fills zero fields and trims the endpoints' trailing slashes.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if len(c.Endpoints) > 0 {
		eps := make([]string, len(c.Endpoints)) // never edit the caller's slice
		for i, e := range c.Endpoints {
			eps[i] = strings.TrimRight(e, "/")
		}
		c.Endpoints = eps
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	for _, e := range c.Endpoints {
		if err := checkEndpoint(e); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, fmt.Errorf("max idle conns per host %d must not be negative", c.MaxIdleConnsPerHost))
	}
	if c.Retry.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("retry max attempts %d must be at least 1", c.Retry.MaxAttempts))
	}
	if c.Retry.InitialBackoff < 0 || c.Retry.MaxBackoff < 0 {
		errs = append(errs, errors.New("retry backoffs must not be negative"))
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		errs = append(errs, errors.New("token must not contain line breaks"))
	}
	return errors.Join(errs...)
}

// checkEndpoint accepts an http or https base URL without query or
// fragment.
func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	switch {
	case err != nil:
		return fmt.Errorf("endpoint %q: %w", e, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("endpoint %q: want an http:// or https:// base URL", e)
	case u.Host == "":
		return fmt.Errorf("endpoint %q: no host", e)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("endpoint %q: a base URL has no query or fragment", e)
	}
	return nil
}
