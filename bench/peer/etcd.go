package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is a clientv3 client of an etcd cluster.
type Etcd struct {
	cli     *clientv3.Client
	getOpts []clientv3.OpOption
}

// EtcdConfig configures an etcd client.
type EtcdConfig struct {
	// Endpoints are the members' client URLs; the client balances
	// requests over them (writes are forwarded to the raft leader).
	Endpoints []string
	// Serializable makes reads serializable (served by the member asked,
	// possibly stale) instead of etcd's default linearizable reads (a
	// ReadIndex round trip through the leader).
	Serializable bool
	// Timeout bounds dialling.
	Timeout time.Duration
}

// NewEtcd connects and checks the cluster answers.
func NewEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.Timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	e := &Etcd{cli: cli}
	if cfg.Serializable {
		e.getOpts = []clientv3.OpOption{clientv3.WithSerializable()}
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if _, err := cli.Get(cctx, "kvdb-bench-ping"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	return e, nil
}

// Op is the driver operation: Put or Get.
func (e *Etcd) Op(ctx context.Context, write bool, key string, value []byte) error {
	if write {
		_, err := e.cli.Put(ctx, key, string(value))
		return err
	}
	_, err := e.cli.Get(ctx, key, e.getOpts...)
	return err
}

// Close closes the client.
func (e *Etcd) Close() error { return e.cli.Close() }
