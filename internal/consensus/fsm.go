package consensus

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
)

// The replicated state machine holds the cluster's configuration only: W
// and R. (The data path is not raft.) A command is a 1-byte tag followed by
// its arguments as unsigned varints.

// cmdSetQuorum sets W and R: tag, w, r.
const cmdSetQuorum byte = 1

// encodeSetQuorum returns the command that sets W and R.
func encodeSetQuorum(w, r int) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64)
	b = append(b, cmdSetQuorum)
	b = binary.AppendUvarint(b, uint64(w))
	return binary.AppendUvarint(b, uint64(r))
}

// errBadCommand is the response of an entry the state machine cannot apply;
// it is logged and otherwise ignored.
var errBadCommand = errors.New("consensus: unknown or malformed command")

// decodeSetQuorum parses the arguments of cmdSetQuorum.
func decodeSetQuorum(b []byte) (w, r int, err error) {
	wu, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, errBadCommand
	}
	ru, m := binary.Uvarint(b[n:])
	if m <= 0 || n+m != len(b) || wu > 1<<16 || ru > 1<<16 {
		return 0, 0, errBadCommand
	}
	return int(wu), int(ru), nil
}

// fsm is the state machine: W and R, and the hook told of every change.
type fsm struct {
	n    int // voters: W and R lie within 1..n
	hook func(w, r int)
	log  *slog.Logger

	mu   sync.Mutex
	w, r int
}

var _ raft.FSM = (*fsm)(nil)

func (f *fsm) quorum() (w, r int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w, f.r
}

func (f *fsm) set(w, r int) {
	f.mu.Lock()
	f.w, f.r = w, r
	f.mu.Unlock()
	if f.hook != nil {
		f.hook(w, r)
	}
}

// Apply applies a committed entry. It returns nil, or an error for an entry
// it ignored (the proposer gets it as the response).
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 {
		f.log.Warn("raft entry ignored: empty command", "index", l.Index)
		return errBadCommand
	}
	switch l.Data[0] {
	case cmdSetQuorum:
		w, r, err := decodeSetQuorum(l.Data[1:])
		if err != nil {
			f.log.Warn("raft entry ignored: malformed quorum command", "index", l.Index)
			return err
		}
		if w < 1 || w > f.n || r < 1 || r > f.n {
			f.log.Warn("raft entry ignored: quorum out of range", "index", l.Index, "w", w, "r", r, "n", f.n)
			return fmt.Errorf("%w: w=%d r=%d, n=%d", ErrInvalid, w, r, f.n)
		}
		f.set(w, r)
		return nil
	default:
		f.log.Warn("raft entry ignored: unknown command", "index", l.Index, "tag", l.Data[0])
		return errBadCommand
	}
}

// snapshotState is the snapshot's JSON.
type snapshotState struct {
	W int `json:"w"`
	R int `json:"r"`
}

// Snapshot captures W and R.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	w, r := f.quorum()
	return fsmSnapshot{W: w, R: r}, nil
}

// Restore replaces W and R with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshotState
	if err := json.NewDecoder(io.LimitReader(rc, 1<<16)).Decode(&s); err != nil {
		return fmt.Errorf("consensus: reading a snapshot: %w", err)
	}
	if s.W < 1 || s.W > f.n || s.R < 1 || s.R > f.n {
		return fmt.Errorf("consensus: snapshot quorum w=%d r=%d out of range for n=%d", s.W, s.R, f.n)
	}
	f.set(s.W, s.R)
	return nil
}

type fsmSnapshot snapshotState

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, _ := json.Marshal(snapshotState(s))
	if _, err := sink.Write(b); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
