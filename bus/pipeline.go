package bus

import (
	"context"
	"errors"
	"fmt"
)

// Step is one stage of a route: validate, map, call a connector, respond
// from a template… It takes the current message and returns the next one
// (which may be the same message, changed); a step that succeeds must
// return one. Returning an error stops the route; a *Fault tells the
// caller exactly what went wrong.
type Step interface {
	Process(ctx context.Context, m *Message) (*Message, error)
}

// StepFunc adapts a function to Step.
type StepFunc func(ctx context.Context, m *Message) (*Message, error)

func (f StepFunc) Process(ctx context.Context, m *Message) (*Message, error) { return f(ctx, m) }

// Connector is an outbound endpoint: call it with a request message, get the
// reply or a Fault. Retries, breakers and timeouts are wrappers around this
// interface, composed in one place (package connectors), not inside each one.
type Connector interface {
	Call(ctx context.Context, req *Message) (*Message, error)
	// Close releases idle connections; safe to call more than once.
	Close() error
}

// NamedStep is a step with the name errors and logs show ("map", "call sap-ecc").
type NamedStep struct {
	Name string
	Step Step
}

// Pipeline is a compiled route: its steps in the order they run.
type Pipeline struct {
	Route string
	Steps []NamedStep
}

// Run passes m through every step. A failing step's error is returned as a
// Fault that names the route (and, for internal errors, the step).
func (p *Pipeline) Run(ctx context.Context, m *Message) (*Message, error) {
	for _, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return nil, p.fault(s.Name, err)
		}
		// The pipeline keeps no reference to m while the step runs: a call
		// step's request (a whole parsed document) need not stay reachable
		// while the step waits on the backend.
		next, err := s.Step.Process(ctx, m)
		if err != nil {
			return nil, p.fault(s.Name, err)
		}
		if next == nil {
			return nil, p.fault(s.Name, errNoMessage)
		}
		m = next
	}
	return m, nil
}

var errNoMessage = errors.New("the step returned no message")

func (p *Pipeline) fault(step string, err error) *Fault {
	var f *Fault
	if !errors.As(err, &f) {
		f = AsFault(fmt.Errorf("step %s: %w", step, err))
		if errors.Is(err, context.DeadlineExceeded) {
			f.Status, f.Title, f.Detail = 504, "Timeout", fmt.Sprintf("step %s: the route's time limit was reached", step)
		}
	}
	if f.Route == "" {
		f.Route = p.Route
	}
	return f
}
