// Package peer holds the clients of the systems kvdb is compared with:
// Redis (one primary, replicas read round robin, optionally WAIT after
// each write) and etcd (clientv3). Each exposes a driver.Op so that
// the very same driver loop as kvdb's runs against it.
package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a client of a Redis primary and its replicas.
type Redis struct {
	nodes    []*redis.Client // primary first
	wait     int
	writeAll bool
	next     atomic.Uint64
	nextW    atomic.Uint64
}

// RedisConfig configures a Redis client.
type RedisConfig struct {
	// Addrs are host:port, the primary first, then its replicas. Reads go
	// round robin to all of them; writes go to the primary.
	Addrs []string
	// Wait, when positive, follows every write with WAIT <Wait> 0 on the
	// same connection: the write is answered only once Wait replicas
	// acknowledged it.
	Wait int
	// WriteAll sends writes round robin to every address instead of the
	// first only (a leaderless kvdb cluster over RESP: every node
	// coordinates).
	WriteAll bool
	// PoolSize is the connection pool of each node (set it to the client
	// concurrency so that no request waits for a connection).
	PoolSize int
	// Timeout bounds dialling, reading and writing.
	Timeout time.Duration
}

// NewRedis connects to every node and checks it answers PING.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("redis: no addresses")
	}
	if cfg.Wait >= len(cfg.Addrs) {
		return nil, fmt.Errorf("redis: WAIT %d needs at least %d replicas, have %d", cfg.Wait, cfg.Wait, len(cfg.Addrs)-1)
	}
	r := &Redis{wait: cfg.Wait, writeAll: cfg.WriteAll}
	for _, a := range cfg.Addrs {
		c := redis.NewClient(&redis.Options{
			Addr:                  a,
			PoolSize:              max(cfg.PoolSize, 1),
			MinIdleConns:          max(cfg.PoolSize, 1),
			PipelinePoolSize:      -1, // SET+WAIT pipelines share the main pool
			DialTimeout:           cfg.Timeout,
			ReadTimeout:           cfg.Timeout,
			WriteTimeout:          cfg.Timeout,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true, // CLIENT SETINFO is Redis 7.2+
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		})
		r.nodes = append(r.nodes, c)
		if err := c.Ping(ctx).Err(); err != nil {
			r.Close()
			return nil, fmt.Errorf("redis %s: %w", a, err)
		}
	}
	return r, nil
}

// Op is the driver operation: SET on the primary (then WAIT when
// configured), GET round robin over the primary and the replicas.
func (r *Redis) Op(ctx context.Context, write bool, key string, value []byte) error {
	if !write {
		n := r.nodes[r.next.Add(1)%uint64(len(r.nodes))]
		return n.Get(ctx, key).Err()
	}
	primary := r.nodes[0]
	if r.writeAll {
		primary = r.nodes[r.nextW.Add(1)%uint64(len(r.nodes))]
	}
	if r.wait <= 0 {
		return primary.Set(ctx, key, value, 0).Err()
	}
	// WAIT counts the replicas that acknowledged this connection's
	// writes, so SET and WAIT must share a connection: one pipeline.
	var wait *redis.Cmd
	_, err := primary.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, value, 0)
		wait = p.Do(ctx, "WAIT", r.wait, 0)
		return nil
	})
	if err != nil {
		return err
	}
	got, err := wait.Int64()
	if err != nil {
		return err
	}
	if got < int64(r.wait) {
		return fmt.Errorf("redis: WAIT %d: only %d replicas acknowledged", r.wait, got)
	}
	return nil
}

// Fill writes keys keys (driver.KeyName(0..keys-1)) of valueSize-byte
// values to the first address as fast as it takes them: conns
// connections, each sending pipelines of batch SETs. Each value differs
// from the others in its first byte, as MeasureStoreMemory's do.
func (r *Redis) Fill(ctx context.Context, keys, valueSize, conns, batch int) error {
	if keys < 1 || conns < 1 || batch < 1 {
		return errors.New("redis: fill: keys, conns and batch must be positive")
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	base := driver.Value(valueSize, 0)
	for range conns {
		wg.Go(func() {
			value := slices.Clone(base)
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= keys || ctx.Err() != nil {
					return
				}
				to := min(from+batch, keys)
				_, err := r.nodes[0].Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := from; i < to; i++ {
						if len(value) > 0 {
							value[0] = 'a' + byte(i%26)
						}
						p.Set(ctx, driver.KeyName(i), value, 0)
					}
					return nil
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("redis: fill keys %d..%d: %w", from, to-1, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// UsedMemory returns used_memory from the first address's INFO memory.
func (r *Redis) UsedMemory(ctx context.Context) (int64, error) {
	info, err := r.nodes[0].Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return ParseInfoField(info, "used_memory")
}

// ParseInfoField returns the integer field name of an INFO answer
// ("name:value" lines).
func ParseInfoField(info, name string) (int64, error) {
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == name {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO has no %s field", name)
}

// FlushAll empties the first address's data set (Redis replicas follow).
func (r *Redis) FlushAll(ctx context.Context) error { return r.nodes[0].FlushAll(ctx).Err() }

// WaitReplicas waits up to timeout for n replicas of the first address to
// hold everything written to it so far: WAIT counts acknowledgements of
// the connection's last write, so it follows a SET of marker on the same
// connection (the replication offset is the primary's, so every earlier
// write is covered). It returns how many replicas acknowledged.
func (r *Redis) WaitReplicas(ctx context.Context, marker string, n int, timeout time.Duration) (int64, error) {
	var wait *redis.Cmd
	_, err := r.nodes[0].Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, marker, "1", 0)
		wait = p.Do(ctx, "WAIT", n, timeout.Milliseconds())
		return nil
	})
	if err != nil {
		return 0, err
	}
	return wait.Int64()
}

// Close closes every connection.
func (r *Redis) Close() error {
	var errs []error
	for _, n := range r.nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
