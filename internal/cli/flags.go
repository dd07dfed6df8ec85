package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kvdb/kvdb/internal/replication"
)

// envName is the environment variable that may set flag name:
// "peer-timeout" -> "KVDB_PEER_TIMEOUT".
func envName(name string) string {
	return "KVDB_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// newFlagSet returns a flag set that reports errors to w and whose usage
// lists every flag with the environment variable that may also set it
// (when withEnv).
func newFlagSet(name, synopsis string, w io.Writer, withEnv bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: kvdb %s %s\n\nflags:\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, typ, strings.ReplaceAll(usage, "\n", "\n    \t"))
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			if withEnv {
				fmt.Fprintf(w, " [env %s]", envName(f.Name))
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable, if set. It returns flag.ErrHelp for
// -h, and a usage error otherwise.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if getenv == nil {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// exitCode maps a flag parsing outcome to the exit code.
func usageExit(fs *flag.FlagSet, w io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(w, "kvdb %s: %v\n", fs.Name(), err)
	return 2
}

// delaysFlag is a flag.Value holding a delay profile.
type delaysFlag struct{ d replication.Delays }

func (f *delaysFlag) String() string { return f.d.String() }
func (f *delaysFlag) Set(s string) error {
	d, err := replication.ParseDelays(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

// membersFlag parses "id=url,id=url" or plain "url,url" (ids node1..).
type membersFlag struct{ m []replication.Member }

func (f *membersFlag) String() string {
	parts := make([]string, len(f.m))
	for i, m := range f.m {
		parts[i] = m.ID + "=" + m.URL
	}
	return strings.Join(parts, ",")
}

func (f *membersFlag) Set(s string) error {
	f.m = nil
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, u, ok := strings.Cut(part, "=")
		if !ok {
			id, u = fmt.Sprintf("node%d", i+1), part
		}
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		f.m = append(f.m, replication.Member{ID: strings.TrimSpace(id), URL: strings.TrimRight(strings.TrimSpace(u), "/")})
	}
	if len(f.m) == 0 {
		return errors.New("empty member list")
	}
	return nil
}
