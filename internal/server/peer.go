package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// The peer endpoints that carry updates: /internal/replicate,
// /internal/replicate-batch and /internal/snapshot. They speak the binary
// framing of package transport, whose limits derive from this server's
// client limits (PeerLimits), so a peer accepts every update a client
// could write, whatever bytes its value holds.

// PeerLimits are the limits of peer messages that follow from c's client
// limits (defaults filled in): a node passes them to its peer transport,
// and the handlers here decode with them.
func (c Config) PeerLimits() transport.Limits {
	c.SetDefaults()
	return transport.Limits{MaxKeyBytes: c.MaxKeyBytes, MaxValueBytes: c.MaxValueBytes}
}

// peerLimits are the limits of the peer messages this server accepts.
func (s *Server) peerLimits() transport.Limits {
	return transport.Limits{MaxKeyBytes: s.cfg.MaxKeyBytes, MaxValueBytes: s.cfg.MaxValueBytes}
}

// decodeUpdates reads a message of updates within the peer body limit
// (413 beyond it) and decodes it (400 if malformed, 413 if a key, a value
// or the count is over the limits), then checks each update: a non-empty
// key, a version, valid UTF-8 (as the client API requires).
func (s *Server) decodeUpdates(w http.ResponseWriter, r *http.Request) ([]replication.Update, error) {
	lim := s.peerLimits()
	limit := lim.MaxBodyBytes()
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: update message of %d bytes, limit %d", errTooLarge, r.ContentLength, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if r.ContentLength >= 0 {
		// The length is known and within the limit: read into a buffer of
		// exactly that size (net/http ends the body at Content-Length).
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(body, b)
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w: update message over %d bytes", errTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	us, err := transport.DecodeUpdates(b, lim)
	switch {
	case errors.Is(err, transport.ErrTooLarge):
		return nil, fmt.Errorf("%w: %v", errTooLarge, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v (Content-Type %q)", errBadRequest, err, r.Header.Get("Content-Type"))
	}
	for i, u := range us {
		switch {
		case u.Key == "" || u.Version == 0:
			return nil, fmt.Errorf("%w: update %d: every update needs a key and a version", errBadRequest, i+1)
		case !utf8.ValidString(u.Key) || !utf8.ValidString(u.Value):
			return nil, fmt.Errorf("%w: update %d: keys and values must be valid UTF-8", errBadRequest, i+1)
		}
	}
	return us, nil
}

func (s *Server) handleReplicate(w http.ResponseWriter, r *http.Request) error {
	us, err := s.decodeUpdates(w, r)
	if err != nil {
		return err
	}
	if len(us) != 1 {
		return fmt.Errorf("%w: replicate carries one update, got %d (use %s)", errBadRequest, len(us), transport.PathBatch)
	}
	if err := s.replica.ApplyReplica(r.Context(), us[0]); err != nil {
		return err
	}
	stamp(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleReplicateBatch(w http.ResponseWriter, r *http.Request) error {
	us, err := s.decodeUpdates(w, r)
	if err != nil {
		return err
	}
	if err := s.replica.ApplyReplicas(r.Context(), us); err != nil {
		return err
	}
	stamp(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleSnapshot streams every entry, for a peer catching up, as a
// snapshot stream (transport.ReadStream reads it).
//
// ?term= fences this node at the caller's election term first (a new
// leader catching up, or a follower syncing from one).
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) error {
	var term uint64
	if t := r.URL.Query().Get("term"); t != "" {
		var err error
		if term, err = strconv.ParseUint(t, 10, 64); err != nil {
			return fmt.Errorf("%w: term %q is not an unsigned integer", errBadRequest, t)
		}
	}
	if !s.replica.Ready() {
		return replication.ErrNotReady
	}
	var sw *transport.StreamWriter
	err := s.replica.Snapshot(term, func(u replication.Update) error {
		if err := r.Context().Err(); err != nil {
			return err
		}
		if sw == nil {
			w.Header().Set("Content-Type", transport.ContentTypeUpdates)
			sw = transport.NewStreamWriter(w)
		}
		return sw.Write(u)
	})
	if err != nil && sw == nil {
		return err // refused before anything was sent: an error answer
	}
	if err == nil {
		if sw == nil {
			w.Header().Set("Content-Type", transport.ContentTypeUpdates)
			sw = transport.NewStreamWriter(w)
		}
		err = sw.Close()
	}
	if err != nil {
		// Headers are gone: cut the stream so the peer sees a broken copy
		// rather than a short one (the end mark is missing, too).
		panic(http.ErrAbortHandler)
	}
	return nil
}

// stamp marks an answer with the moment the update was applied or the copy
// read (transport.HeaderStamp), so the coordinator can split the round
// trip into its two hops (package hops).
func stamp(w http.ResponseWriter) {
	w.Header()[transport.HeaderStamp] = []string{strconv.FormatInt(time.Now().UnixNano(), 10)}
}
