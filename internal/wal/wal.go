// Package wal is kvdb's optional write-ahead log: an append-only file of
// versioned updates, replayed into the store when a node starts so that a
// restart (of one node or of the whole cluster) loses nothing the node had
// acknowledged.
//
// Record format: 4-byte little-endian payload length, 4-byte CRC-32C of
// the payload, then the payload: uvarint version, uvarint key length, key,
// value. A delete (a tombstone) is the payload 0x00, uvarint version,
// uvarint key length, key: a version is never zero, so the leading zero
// tells it from a value's record, and logs written before deletes existed
// read unchanged. A torn or corrupt tail (a crash mid-append) is detected by length
// or checksum and truncated on open; everything before it is kept.
//
// Fsync policy (Config.Sync):
//   - SyncAlways: Append returns only after the record is on disk. Writers
//     that append concurrently share one fsync (group commit), so the cost
//     is one fsync per batch, not per write. Nothing acknowledged is lost
//     by a crash of the process or of the machine.
//   - SyncInterval: records are written at once and fsynced every
//     Interval; a process crash loses nothing (the OS has the data), a
//     machine crash loses at most the last Interval.
//   - SyncNever: the OS decides; a process crash still loses nothing.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Sync policies.
const (
	SyncAlways   = "always"
	SyncInterval = "interval"
	SyncNever    = "never"
)

// FileName is the log's name inside the data directory.
const FileName = "kvdb.wal"

// maxRecord bounds one record (a corrupt length never allocates more).
const maxRecord = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Config configures a log.
type Config struct {
	// Dir is the data directory (created if missing).
	Dir string
	// Sync is SyncAlways (default), SyncInterval or SyncNever.
	Sync string
	// Interval is the fsync period under SyncInterval (default 100ms).
	Interval time.Duration
	// Logger receives recovery notes (default: discard).
	Logger *slog.Logger

	// syncFile replaces f.Sync (tests inject fsync failures).
	syncFile func(*os.File) error
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Sync == "" {
		c.Sync = SyncAlways
	}
	if c.Interval == 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("wal: no data directory"))
	}
	switch c.Sync {
	case SyncAlways, SyncInterval, SyncNever:
	default:
		errs = append(errs, fmt.Errorf("wal: fsync policy %q: want always, interval or never", c.Sync))
	}
	if c.Interval < 0 {
		errs = append(errs, errors.New("wal: negative interval"))
	}
	return errors.Join(errs...)
}

// Record is one logged update: a value, or a delete (Deleted, a tombstone
// at Version with no value).
type Record struct {
	Key     string
	Value   string
	Version uint64
	Deleted bool
}

// Log is an open write-ahead log.
type Log struct {
	cfg Config
	f   *os.File

	mu      sync.Mutex
	buf     []byte
	written uint64 // records appended
	err     error  // sticky: the first failed write or fsync
	// sync flushes the file to disk (f.Sync; tests inject failures).
	sync func() error

	syncMu   sync.Mutex
	synced   uint64 // records known durable
	syncCond *sync.Cond
	syncing  bool

	stop chan struct{}
	done chan struct{}
}

// Open opens (or creates) the log in cfg.Dir, calls replay for every
// intact record in order, truncates a torn tail, and then rewrites the
// file as the records live emits (the state after replay, one record per
// key), so the log does not grow without bound across restarts.
func Open(cfg Config, replay func(Record), live func(emit func(Record))) (*Log, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	path := filepath.Join(cfg.Dir, FileName)
	n, err := replayFile(path, replay)
	if err != nil {
		return nil, err
	}
	if err := compact(path, live); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	cfg.Logger.Info("write-ahead log opened", "path", path, "replayed", n, "fsync", cfg.Sync)
	l := &Log{cfg: cfg, f: f, sync: f.Sync, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.syncFile != nil {
		l.sync = func() error { return cfg.syncFile(f) }
	}
	l.syncCond = sync.NewCond(&l.syncMu)
	if cfg.Sync == SyncInterval {
		go l.syncLoop()
	} else {
		close(l.done)
	}
	return l, nil
}

// replayFile reads every intact record; a torn or corrupt tail is cut off.
func replayFile(path string, fn func(Record)) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	n := 0
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			break // clean end, or a torn header
		}
		size := binary.LittleEndian.Uint32(hdr[:4])
		if size > maxRecord {
			break
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		rec, ok := decode(payload)
		if !ok {
			break
		}
		fn(rec)
		n++
		off += 8 + int64(size)
	}
	if st, err := f.Stat(); err == nil && st.Size() > off {
		if err := f.Truncate(off); err != nil {
			return n, fmt.Errorf("wal: truncating a torn tail: %w", err)
		}
	}
	return n, nil
}

// compact rewrites the log as the live records, atomically.
func compact(path string, live func(emit func(Record))) error {
	tmp := path + ".compact"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	live(func(r Record) {
		buf = appendRecord(buf[:0], r)
		w.Write(buf)
	})
	err = errors.Join(w.Flush(), f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: compacting: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func appendRecord(dst []byte, r Record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	if r.Deleted {
		dst = append(dst, tombstoneMark)
	}
	dst = binary.AppendUvarint(dst, r.Version)
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	if !r.Deleted {
		dst = append(dst, r.Value...)
	}
	payload := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

// tombstoneMark opens a delete's payload (where a value's starts with its
// non-zero version).
const tombstoneMark = 0x00

func decode(p []byte) (Record, bool) {
	deleted := len(p) > 0 && p[0] == tombstoneMark
	if deleted {
		p = p[1:]
	}
	v, n := binary.Uvarint(p)
	if n <= 0 || v == 0 {
		return Record{}, false
	}
	p = p[n:]
	kl, n := binary.Uvarint(p)
	if n <= 0 || kl > uint64(len(p)-n) {
		return Record{}, false
	}
	p = p[n:]
	if deleted {
		if kl != uint64(len(p)) {
			return Record{}, false // a delete has no value
		}
		return Record{Version: v, Key: string(p), Deleted: true}, true
	}
	return Record{Version: v, Key: string(p[:kl]), Value: string(p[kl:])}, true
}

// Append logs records and, under SyncAlways, returns once they are on
// disk.
func (l *Log) Append(recs ...Record) error {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	l.buf = l.buf[:0]
	for _, r := range recs {
		l.buf = appendRecord(l.buf, r)
	}
	if _, err := l.f.Write(l.buf); err != nil {
		l.err = fmt.Errorf("wal: append: %w", err)
		l.mu.Unlock()
		return l.err
	}
	l.written += uint64(len(recs))
	mine := l.written
	l.mu.Unlock()
	if l.cfg.Sync != SyncAlways {
		return nil
	}
	return l.waitSynced(mine)
}

// waitSynced returns once record number n is durable: the first waiter
// fsyncs for everyone who appended before it started (group commit).
func (l *Log) waitSynced(n uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for l.synced < n {
		if err := l.Err(); err != nil {
			return err
		}
		if l.syncing {
			l.syncCond.Wait()
			continue
		}
		l.syncing = true
		l.syncMu.Unlock()
		l.mu.Lock()
		upto := l.written
		l.mu.Unlock()
		err := l.fsync()
		l.syncMu.Lock()
		l.syncing = false
		l.syncCond.Broadcast()
		if err != nil {
			return err
		}
		l.synced = max(l.synced, upto)
	}
	return nil
}

// fsync flushes the file and latches a failure: after a failed fsync the
// kernel may have dropped the dirty pages, so a later fsync that succeeds
// proves nothing about the records before it (the "fsyncgate" lesson
// PostgreSQL learned in 2018). Every later Append fails until the log is
// reopened, which replays what the file really holds.
func (l *Log) fsync() error {
	if err := l.sync(); err != nil {
		l.fail(fmt.Errorf("wal: fsync: %w", err))
		return l.Err()
	}
	return nil
}

// fail latches err as the log's permanent error (the first one wins).
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// Err returns the failure that stopped the log (nil while it is healthy).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Log) syncLoop() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.fsync(); err != nil {
				l.cfg.Logger.Error("wal: periodic fsync failed; the log refuses appends until restart", "err", err)
				return
			}
		}
	}
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.sync(), l.f.Close())
}
