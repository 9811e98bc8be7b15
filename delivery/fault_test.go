package delivery

import (
	"errors"
	"fmt"
	"testing"
)

func TestAsFault(t *testing.T) {
	for i, c := range []struct {
		err    error
		status int // 0: no fault
	}{
		{nil, 0},
		{&DuplicateError{Route: "r", Key: "k", MessageID: "m"}, 0},
		{&KeyError{Route: "r", Key: "k", Err: ErrInFlight}, 409},
		{&KeyError{Route: "r", Key: "k", Err: ErrKeyReused}, 422},
		{fmt.Errorf("delivery: message %q: %w", "x", ErrNotFound), 404},
		{fmt.Errorf("replay: %w", ErrNotReplayable), 409},
		{fmt.Errorf("discard: %w", ErrNotDiscardable), 409},
		{ErrClosed, 503},
		{errors.New("disk full"), 500},
	} {
		f := AsFault(c.err)
		switch {
		case c.status == 0 && f != nil:
			t.Errorf("case %d: want no fault, got %v", i, f)
		case c.status != 0 && (f == nil || f.Status != c.status):
			t.Errorf("case %d: want %d, got %v", i, c.status, f)
		}
	}
}
