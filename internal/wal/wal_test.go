package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// open opens the log in dir and returns it with the records replayed.
func open(t *testing.T, dir, sync string, live []Record) (*Log, []Record) {
	t.Helper()
	var got []Record
	l, err := Open(Config{Dir: dir, Sync: sync}, func(r Record) { got = append(got, r) }, func(emit func(Record)) {
		for _, r := range live {
			emit(r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, got
}

func TestRoundTrip(t *testing.T) {
	for _, policy := range []string{SyncAlways, SyncInterval, SyncNever} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			l, got := open(t, dir, policy, nil)
			if len(got) != 0 {
				t.Fatalf("new log replayed %d records", len(got))
			}
			want := []Record{{Key: "a", Value: "1", Version: 1}, {Key: "b", Value: "", Version: 2}, {Key: "a", Value: "long value with ünïcode", Version: 3}, {Key: "k/with/slash", Value: "x", Version: 1 << 40}, {Key: "a", Version: 4, Deleted: true}, {Key: "gone", Version: 5, Deleted: true}}
			for _, r := range want {
				if err := l.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, got = open(t, dir, policy, nil)
			defer l.Close()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
		})
	}
}

// A crash in the middle of an append leaves a torn record: it and anything
// after it are cut off, everything before it is kept.
func TestTornAndCorruptTails(t *testing.T) {
	for _, damage := range []struct {
		name string
		fn   func(b []byte) []byte
	}{
		{"torn payload", func(b []byte) []byte { return b[:len(b)-3] }},
		{"torn header", func(b []byte) []byte { return append(b, 9, 0, 0) }},
		{"flipped bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"absurd length", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := open(t, dir, SyncNever, nil)
			for i := range 5 {
				if err := l.Append(Record{Key: fmt.Sprint("k", i), Value: "v", Version: uint64(i + 1)}); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			path := filepath.Join(dir, FileName)
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, damage.fn(b), 0o600); err != nil {
				t.Fatal(err)
			}
			l, got := open(t, dir, SyncNever, nil)
			defer l.Close()
			want := 5
			if damage.name != "torn header" && damage.name != "absurd length" {
				want = 4 // the last record itself was damaged
			}
			if len(got) != want {
				t.Fatalf("replayed %d records, want %d", len(got), want)
			}
		})
	}
}

// Open rewrites the log as the live state, so it does not grow forever.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	l, _ := open(t, dir, SyncNever, nil)
	for i := range 100 {
		l.Append(Record{Key: "same", Value: fmt.Sprint(i), Version: uint64(i + 1)})
	}
	l.Close()
	l, got := open(t, dir, SyncNever, []Record{{Key: "same", Value: "99", Version: 100}})
	l.Close()
	if len(got) != 100 {
		t.Fatalf("replayed %d", len(got))
	}
	l, got = open(t, dir, SyncNever, nil)
	l.Close()
	if len(got) != 1 || got[0].Value != "99" {
		t.Fatalf("after compaction replayed %v, want the one live record", got)
	}
}

// Concurrent appenders under SyncAlways all get their records on disk
// (group commit shares fsyncs between them).
func TestConcurrentAppendAlways(t *testing.T) {
	dir := t.TempDir()
	l, _ := open(t, dir, SyncAlways, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := l.Append(Record{Key: fmt.Sprintf("g%d-%d", g, i), Value: "v", Version: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	l, got := open(t, dir, SyncNever, nil)
	l.Close()
	if len(got) != 400 {
		t.Fatalf("replayed %d records, want 400", len(got))
	}
}

func TestValidate(t *testing.T) {
	if _, err := Open(Config{Dir: t.TempDir(), Sync: "sometimes"}, func(Record) {}, func(func(Record)) {}); err == nil {
		t.Fatal("an unknown fsync policy was accepted")
	}
	if _, err := Open(Config{}, func(Record) {}, func(func(Record)) {}); err == nil {
		t.Fatal("an empty data directory was accepted")
	}
}

func BenchmarkAppendAlways(b *testing.B) {
	l, err := Open(Config{Dir: b.TempDir()}, func(Record) {}, func(func(Record)) {})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(Record{Key: "key", Value: "a value of some length", Version: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzReplay: whatever bytes the log file holds, opening it never panics,
// keeps only intact records, and leaves a file that reopens to the same
// records.
func FuzzReplay(f *testing.F) {
	f.Add(appendRecord(nil, Record{Key: "k", Value: "v", Version: 1}))
	f.Add(append(appendRecord(nil, Record{Key: "a", Value: "", Version: 9}), 1, 2, 3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var first []Record
		l, err := Open(Config{Dir: dir, Sync: SyncNever}, func(r Record) { first = append(first, r) }, func(emit func(Record)) {
			for _, r := range first {
				emit(r)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		var second []Record
		l, err = Open(Config{Dir: dir, Sync: SyncNever}, func(r Record) { second = append(second, r) }, func(func(Record)) {})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if fmt.Sprint(first) != fmt.Sprint(second) {
			t.Fatalf("reopened log replays %v, first open replayed %v", second, first)
		}
	})
}

// A failed fsync is latched: the kernel may have dropped the dirty pages,
// so a later fsync that succeeds proves nothing about the records before
// it. Every later Append fails until the log is reopened, under both
// policies that fsync.
func TestFsyncFailureIsLatched(t *testing.T) {
	for _, policy := range []string{SyncAlways, SyncInterval} {
		t.Run(policy, func(t *testing.T) {
			injected := errors.New("EIO")
			var mu sync.Mutex
			fail := true
			cfg := Config{Dir: t.TempDir(), Sync: policy, Interval: 10 * time.Millisecond, syncFile: func(*os.File) error {
				mu.Lock()
				defer mu.Unlock()
				if fail {
					return injected
				}
				return nil
			}}
			l, err := Open(cfg, func(Record) {}, func(func(Record)) {})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if policy == SyncAlways {
				if err := l.Append(Record{Key: "a", Value: "1", Version: 1}); !errors.Is(err, injected) {
					t.Fatalf("append with a failing fsync = %v, want the fsync error", err)
				}
			} else {
				deadline := time.Now().Add(5 * time.Second)
				for l.Err() == nil && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond) // polling the condition: the periodic fsync fails
				}
			}
			mu.Lock()
			fail = false
			mu.Unlock()
			if err := l.Append(Record{Key: "b", Value: "2", Version: 2}); !errors.Is(err, injected) {
				t.Fatalf("append after a failed fsync = %v, want the latched fsync error", err)
			}
			if !errors.Is(l.Err(), injected) {
				t.Fatalf("Err() = %v, want the fsync error", l.Err())
			}
		})
	}
}
