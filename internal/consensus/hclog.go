package consensus

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is raft's logger (hclog.Logger) writing to a slog.Logger.
// Raft's trace and debug lines go to slog's debug level, so they are dropped
// unless the handler is at debug; the rest keep their level.
type hclogAdapter struct {
	base    *slog.Logger // without the name and implied arguments
	log     *slog.Logger // base with them
	name    string
	implied []any
	level   *atomic.Int32 // an hclog.Level; NoLevel: slog's handler decides
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLog(l *slog.Logger, name string) *hclogAdapter {
	a := &hclogAdapter{base: l, name: name, level: new(atomic.Int32)}
	a.log = a.derive()
	return a
}

func (a *hclogAdapter) derive() *slog.Logger {
	l := a.base
	if a.name != "" {
		l = l.With("logger", a.name)
	}
	if len(a.implied) > 0 {
		l = l.With(a.implied...)
	}
	return l
}

func (a *hclogAdapter) clone() *hclogAdapter {
	c := *a
	c.implied = append([]any(nil), a.implied...)
	return &c
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug: // NoLevel, Trace, Debug
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	if l == hclog.Off {
		return false
	}
	if min := hclog.Level(a.level.Load()); min != hclog.NoLevel && l < min {
		return false
	}
	return a.log.Enabled(context.Background(), slogLevel(l))
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level > hclog.Debug && connClosed(args) {
		// A connection closed under raft's transport (this node or a peer
		// stopping, a partition cutting it): raft logs it as an error, but
		// it is the expected end of a connection, and raft redials.
		level = hclog.Debug
	}
	if a.enabled(level) {
		a.log.Log(context.Background(), slogLevel(level), msg, args...)
	}
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return append([]any(nil), a.implied...) }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := a.clone()
	c.implied = append(c.implied, args...)
	c.log = c.derive()
	return c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := a.clone()
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	c.log = c.derive()
	return c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := a.clone()
	c.name = name
	c.log = c.derive()
	return c
}

// SetLevel sets a minimum level on top of the slog handler's (shared with
// the loggers derived from this one, as hclog's are).
func (a *hclogAdapter) SetLevel(l hclog.Level) { a.level.Store(int32(l)) }

func (a *hclogAdapter) GetLevel() hclog.Level {
	if l := hclog.Level(a.level.Load()); l != hclog.NoLevel {
		return l
	}
	for _, l := range []hclog.Level{hclog.Trace, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = slogLevel(opts.ForceLevel)
	}
	return slog.NewLogLogger(a.log.Handler(), level).Writer()
}

// connClosed reports whether one of a log line's values is the error of a
// closed connection.
func connClosed(args []any) bool {
	for _, v := range args {
		if err, ok := v.(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)) {
			return true
		}
	}
	return false
}
