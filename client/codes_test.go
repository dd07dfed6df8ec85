package client_test

import (
	"testing"

	"github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/errcode"
)

// The client keeps its own copy of the codes (a public package should not
// pull the server's packages into its users' builds); they must stay the
// server's.
func TestCodesMatchServer(t *testing.T) {
	for _, p := range [][2]string{
		{client.CodeBadRequest, errcode.BadRequest},
		{client.CodeInvalidUTF8, errcode.InvalidUTF8},
		{client.CodeInvalidArgument, errcode.InvalidArgument},
		{client.CodeTooLarge, errcode.TooLarge},
		{client.CodeBodyTimeout, errcode.BodyTimeout},
		{client.CodeUnauthorized, errcode.Unauthorized},
		{client.CodeProtectedMode, errcode.ProtectedMode},
		{client.CodeMethodNotAllowed, errcode.MethodNotAllowed},
		{client.CodeNoSuchEndpoint, errcode.NoSuchEndpoint},
		{client.CodeNotFound, errcode.NotFound},
		{client.CodeNotLeader, errcode.NotLeader},
		{client.CodeQuorum, errcode.QuorumNotReached},
		{client.CodeConfigIncomplete, errcode.ConfigIncomplete},
		{client.CodeShuttingDown, errcode.ShuttingDown},
		{client.CodeNotReady, errcode.CatchingUp},
		{client.CodeStorage, errcode.StorageFailure},
		{client.CodeLeaderUnavailable, errcode.LeaderUnavailable},
		{client.CodeLeaderCatchingUp, errcode.LeaderCatchingUp},
		{client.CodeStaleTerm, errcode.StaleTerm},
		{client.CodeTimeout, errcode.Timeout},
		{client.CodeInternal, errcode.Internal},
	} {
		if p[0] != p[1] {
			t.Errorf("client code %q, server code %q", p[0], p[1])
		}
	}
	// Every code that stands for a replication sentinel has a client
	// sentinel too.
	known := map[string]bool{
		client.CodeInvalidArgument: true, client.CodeNotFound: true, client.CodeNotLeader: true, client.CodeQuorum: true,
		client.CodeShuttingDown: true, client.CodeNotReady: true, client.CodeStorage: true, client.CodeLeaderUnavailable: true,
		client.CodeLeaderCatchingUp: true, client.CodeStaleTerm: true,
	}
	for _, c := range errcode.Codes() {
		if !known[c] {
			t.Errorf("server code %q has no client counterpart", c)
		}
	}
}
