package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Healthcheck asks the local node for GET /health and exits 0 on 200, 1
// otherwise. It is the container health check (the image is FROM scratch,
// so there is no curl or shell): it reads the same KVDB_LISTEN as serve and
// turns a wildcard listen address into loopback.
func Healthcheck(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("healthcheck", "[flags]   (exit 0 if the local node answers GET /health with 200, else 1)", env.Stderr, true)
	var (
		listen  string
		timeout time.Duration
	)
	fs.StringVar(&listen, "listen", ":8080", "the node's listen address, as given to serve")
	fs.DurationVar(&timeout, "health-timeout", 2*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, env.Getenv); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	url, err := healthURL(listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb healthcheck: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb healthcheck: %v\n", err)
		return 1
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(env.Stderr, "kvdb healthcheck: %s answered %d: %s\n", url, resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(env.Stdout, "%s\n", body)
	return 0
}

// healthURL is the /health URL of a node listening on listen: ":8080",
// "0.0.0.0:8080" and "[::]:8080" become 127.0.0.1:8080; a specific host is
// kept.
func healthURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("listen address %q: no fixed port to check", listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/health", nil
}
