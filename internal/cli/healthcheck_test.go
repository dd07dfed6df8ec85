package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		listen, want string
		err          bool
	}{
		{":8080", "http://127.0.0.1:8080/health", false},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/health", false},
		{"[::]:9001", "http://127.0.0.1:9001/health", false},
		{"10.1.2.3:8080", "http://10.1.2.3:8080/health", false},
		{"[::1]:8080", "http://[::1]:8080/health", false},
		{"localhost:8080", "http://localhost:8080/health", false},
		{"8080", "", true},
		{":0", "", true},
	} {
		got, err := healthURL(tc.listen)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("healthURL(%q) = %q, %v; want %q (error %v)", tc.listen, got, err, tc.want, tc.err)
		}
	}
}

// healthServer serves /health with code on a loopback port and returns the
// listen address to give healthcheck.
func healthServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return ":" + port
}

func TestHealthcheck(t *testing.T) {
	ok := healthServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	})
	catchingUp := healthServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"catching-up"}`))
	})
	hung := healthServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().(*net.TCPAddr)
		l.Close()
		return ":" + strings.TrimPrefix(addr.String(), "127.0.0.1:")
	}()

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
	}{
		{"200 via flag", []string{"--listen", ok}, nil, 0},
		{"200 via KVDB_LISTEN", nil, map[string]string{"KVDB_LISTEN": ok}, 0},
		{"503 while catching up", []string{"--listen", catchingUp}, nil, 1},
		{"nothing listening", []string{"--listen", closed}, nil, 1},
		{"no answer within the timeout", []string{"--listen", hung, "--health-timeout", "200ms"}, nil, 1},
		{"bad listen address", []string{"--listen", "nonsense"}, nil, 2},
		{"unknown flag", []string{"--bogus"}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := Healthcheck(context.Background(), tc.args, Env{Stdout: &out, Stderr: &errb,
				Getenv: func(k string) string { return tc.env[k] }})
			if code != tc.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tc.code, out.String(), errb.String())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
