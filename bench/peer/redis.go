// Package peer holds the clients of the systems kvdb is compared with:
// Redis (one primary, replicas read round robin, optionally WAIT after
// each write) and etcd (clientv3). Each exposes a driver.Op so that
// the very same driver loop as kvdb's runs against it.
package peer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a client of a Redis primary and its replicas.
type Redis struct {
	nodes []*redis.Client // primary first
	wait  int
	next  atomic.Uint64
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
	r := &Redis{wait: cfg.Wait}
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

// Close closes every connection.
func (r *Redis) Close() error {
	var errs []error
	for _, n := range r.nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
