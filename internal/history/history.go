// Package history defines the operation history that `kvdb load` records
// and `kvdb check` analyses: one JSON object per line (NDJSON), one line per
// operation, in completion order.
//
// A line looks like
//
//	{"client":3,"seq":41,"op":"set","key":"r1x2-k17","value":"r1x2-c3-41","version":12,
//	 "status":201,"node":"http://127.0.0.1:8080","served_by":"node1",
//	 "intended_us":1718000000123456,"sent_us":1718000000123470,"done_us":1718000000125012}
//
// Times are microseconds since the Unix epoch, taken from one monotonic
// clock per run (t0's wall time plus monotonic offsets), so they order
// operations of one run correctly even if the wall clock steps.
package history

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Operation kinds. A delete ("del") is a write of "absent": it answers 200
// with the tombstone's version, and reads after it answer 404 until a later
// set.
const (
	OpSet = "set"
	OpGet = "get"
	OpDel = "del"
)

// Error classes that Op.ErrorClass reports besides HTTP status codes. The
// load tester prefixes transport errors with "timeout: " or "network: ".
const (
	ClassTimeout     = "timeout"
	ClassNetwork     = "network"
	ClassDropped     = "dropped"
	ClassBadResponse = "bad_response"
)

// Op is one operation of a history.
type Op struct {
	// Client is the id of the client slot that issued the operation. A
	// slot has at most one operation in flight, so one client's operations
	// never overlap. -1 for dropped operations.
	Client int `json:"client"`
	// Seq is the request's index i in the open-loop schedule (intended at
	// t0 + i/QPS); unique within a run.
	Seq int64 `json:"seq"`
	// Op is OpSet, OpGet or OpDel.
	Op string `json:"op"`
	// Key is the key read or written.
	Key string `json:"key"`
	// Value is the value written (set) or read (get with status 200); empty
	// for a delete. Every value a run writes is unique, so a read names the
	// write it saw.
	Value string `json:"value"`
	// Version is the version the server reported (set and del: the version
	// assigned; get: the version read); 0 when there is none.
	Version uint64 `json:"version"`
	// Status is the HTTP status; 0 when no response arrived (timeout,
	// network error) or the request was dropped.
	Status int `json:"status"`
	// Node is the base URL the request was sent to.
	Node string `json:"node"`
	// ServedBy is the node id named in the response body ("node").
	ServedBy string `json:"served_by,omitempty"`
	// IntendedUS is when the open-loop schedule meant to send the request.
	IntendedUS int64 `json:"intended_us"`
	// SentUS is when the request was actually sent; 0 if never sent.
	SentUS int64 `json:"sent_us"`
	// DoneUS is when the response (or the error) arrived.
	DoneUS int64 `json:"done_us"`
	// Error describes a failure: the server's {"error"} text, or a
	// transport error prefixed with its class ("timeout: ", "network: ").
	Error string `json:"error,omitempty"`
	// Dropped marks a request never sent because the in-flight cap was
	// reached.
	Dropped bool `json:"dropped,omitempty"`
}

// IsRead reports whether the operation is a get.
func (o Op) IsRead() bool { return o.Op == OpGet }

// IsWrite reports whether the operation is a write: a set or a delete.
func (o Op) IsWrite() bool { return o.Op == OpSet || o.Op == OpDel }

// IsDelete reports whether the operation is a delete.
func (o Op) IsDelete() bool { return o.Op == OpDel }

// AckStatus is the status that acknowledges the operation: 201 for a set,
// 200 for a delete or a get.
func (o Op) AckStatus() int {
	if o.Op == OpSet {
		return 201
	}
	return 200
}

// OK reports whether the operation succeeded: a set answered 201, a delete
// 200, a get 200 or 404 (the key is absent: a valid answer).
func (o Op) OK() bool {
	if o.Dropped || o.Error != "" {
		return false
	}
	if o.IsWrite() {
		return o.Status == o.AckStatus()
	}
	return o.Status == 200 || o.Status == 404
}

// Found reports whether a successful get found the key.
func (o Op) Found() bool { return o.IsRead() && o.Status == 200 && o.Error == "" }

// WriteOutcome says what a set did to the database.
type WriteOutcome int

// Write outcomes.
const (
	// WriteFailed: definitely not applied (dropped, or a 4xx/3xx answer).
	WriteFailed WriteOutcome = iota
	// WriteAcked: acknowledged (201 for a set, 200 for a delete), even if
	// the body was unreadable.
	WriteAcked
	// WriteUnknown: may or may not have been applied (timeout, network
	// error, 5xx such as "write quorum not reached").
	WriteUnknown
)

// Outcome classifies a set or a delete. It is meaningless for gets.
func (o Op) Outcome() WriteOutcome {
	switch {
	case o.Dropped:
		return WriteFailed
	case o.Status == o.AckStatus():
		return WriteAcked
	case o.Status == 0, o.Status >= 500:
		return WriteUnknown
	default:
		return WriteFailed
	}
}

// ErrorClass names the kind of failure for error counts: the HTTP status
// ("503"), "timeout", "network", "dropped", or "bad_response" (a success
// status with an unreadable body). It returns "" when OK.
func (o Op) ErrorClass() string {
	switch {
	case o.OK():
		return ""
	case o.Dropped:
		return ClassDropped
	case o.Status != 0 && o.Error != "" && (o.Status == 201 || o.Status == 200):
		return ClassBadResponse
	case o.Status != 0:
		return strconv.Itoa(o.Status)
	case strings.HasPrefix(o.Error, ClassTimeout+":"):
		return ClassTimeout
	default:
		return ClassNetwork
	}
}

// Latency is the time from the intended start to completion (what a user
// of an open system waits, without coordinated omission).
func (o Op) Latency() time.Duration { return usDuration(o.DoneUS - o.IntendedUS) }

// ServiceTime is the time from actually sending to completion.
func (o Op) ServiceTime() time.Duration { return usDuration(o.DoneUS - o.SentUS) }

// SendDelay is how late the request was sent relative to its schedule.
func (o Op) SendDelay() time.Duration { return usDuration(o.SentUS - o.IntendedUS) }

func usDuration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// Validate reports an operation that cannot be analysed.
func (o Op) Validate() error {
	var errs []error
	if o.Op != OpSet && o.Op != OpGet && o.Op != OpDel {
		errs = append(errs, fmt.Errorf("op %q: want %q, %q or %q", o.Op, OpSet, OpGet, OpDel))
	}
	if o.Op == OpDel && o.Value != "" {
		errs = append(errs, errors.New("a delete carries a value"))
	}
	if o.Key == "" {
		errs = append(errs, errors.New("empty key"))
	}
	if o.IntendedUS < 0 || o.SentUS < 0 || o.DoneUS < 0 {
		errs = append(errs, errors.New("negative time"))
	}
	if !o.Dropped && o.SentUS != 0 && o.DoneUS < o.SentUS {
		errs = append(errs, fmt.Errorf("done_us %d before sent_us %d", o.DoneUS, o.SentUS))
	}
	return errors.Join(errs...)
}
