//go:build kvdb_node

package cli

import (
	"strings"
	"testing"
)

// go test -tags kvdb_node -run NodeBuild ./internal/cli/ (make test runs it).
func TestNodeBuildLeavesOutTheMeasuringCommands(t *testing.T) {
	for name, cmd := range map[string]func() (int, string, string){
		"experiment": func() (int, string, string) { return runCmd(t, Experiment, "--quick") },
		"report":     func() (int, string, string) { return runCmd(t, Report, "results") },
		"bench":      func() (int, string, string) { return runCmd(t, Bench, "-h") },
	} {
		code, stdout, stderr := cmd()
		if code != 2 || stdout != "" || !strings.Contains(stderr, "kvdb "+name+": not in this build") || !strings.Contains(stderr, "make build") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, stdout, stderr)
		}
	}
	var help syncBuffer
	if code := Main(t.Context(), []string{"help"}, Env{Stdout: &help, Stderr: &help}); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	if !strings.Contains(help.String(), "not in this build") || !strings.Contains(help.String(), "serve") {
		t.Errorf("help does not say which commands this build lacks:\n%s", help.String())
	}
}
