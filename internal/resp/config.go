package resp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the RESP server. Zero fields take the defaults that
// SetDefaults documents; DefaultConfig returns them filled in.
type Config struct {
	// MaxKeyBytes and MaxValueBytes bound a key and a value, as on the HTTP
	// API (defaults 1 KiB and 1 MiB; the node copies its HTTP limits in).
	// A SET over them answers an error and the connection stays open.
	MaxKeyBytes, MaxValueBytes int
	// MaxCommandBytes bounds one command as it arrives, framing included
	// (default MaxKeyBytes+MaxValueBytes+64 KiB, the HTTP body limit). A
	// command over it is a protocol error: the client gets "-ERR Protocol
	// error: ..." and the connection is closed, as Redis does past its
	// proto-max-bulk-len. It bounds what one connection buffers.
	MaxCommandBytes int
	// MaxArgs bounds the arguments of one command (default 65536).
	MaxArgs int
	// MaxInlineBytes bounds an inline (telnet-style) command (default 64
	// KiB, Redis's own limit).
	MaxInlineBytes int
	// MaxClients bounds the open connections (default 10000, Redis's
	// maxclients); past it a new connection gets "-ERR max number of
	// clients reached" and is closed.
	MaxClients int
	// RequestTimeout bounds one command's coordination: a SET waiting for
	// W acknowledgements, a quorum read (default 5s, as on HTTP).
	RequestTimeout time.Duration
	// Addrs maps member IDs to the RESP address clients reach them at. A
	// follower's READONLY error names the leader's from here (else its
	// HTTP URL), and INFO replication shows it.
	Addrs map[string]string
	// Durable says updates are logged to disk before they are
	// acknowledged (the node has a data directory): CONFIG GET appendonly
	// answers yes.
	Durable bool
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the RESP metrics (default: a registry of the
	// server's own).
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxKeyBytes:    1 << 10,
		MaxValueBytes:  1 << 20,
		MaxArgs:        1 << 16,
		MaxInlineBytes: 64 << 10,
		MaxClients:     10000,
		RequestTimeout: 5 * time.Second,
	}
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.MaxCommandBytes == 0 {
		c.MaxCommandBytes = c.MaxKeyBytes + c.MaxValueBytes + 64<<10
	}
	if c.MaxArgs == 0 {
		c.MaxArgs = d.MaxArgs
	}
	if c.MaxInlineBytes == 0 {
		c.MaxInlineBytes = d.MaxInlineBytes
	}
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Validate reports every invalid setting.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxKeyBytes < 1 {
		errs = append(errs, fmt.Errorf("max key bytes %d must be at least 1", c.MaxKeyBytes))
	}
	if c.MaxValueBytes < 0 {
		errs = append(errs, fmt.Errorf("max value bytes %d must not be negative", c.MaxValueBytes))
	}
	if c.MaxCommandBytes < c.MaxKeyBytes+c.MaxValueBytes+64 {
		errs = append(errs, fmt.Errorf("max command bytes %d leaves no room for a SET of the largest key and value", c.MaxCommandBytes))
	}
	if c.MaxArgs < 3 {
		errs = append(errs, fmt.Errorf("max args %d: a SET needs 3", c.MaxArgs))
	}
	if c.MaxInlineBytes < 64 {
		errs = append(errs, fmt.Errorf("max inline bytes %d must be at least 64", c.MaxInlineBytes))
	}
	if c.MaxClients < 1 {
		errs = append(errs, fmt.Errorf("max clients %d must be at least 1", c.MaxClients))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("request timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) limits() limits {
	return limits{maxArgs: c.MaxArgs, maxCommand: int64(c.MaxCommandBytes), maxInline: int64(c.MaxInlineBytes)}
}
