package bus

import (
	"context"
	"testing"
)

// A step that succeeds without a message is a bug in the step: the route
// answers 500 naming it, it does not go on with a stale message.
func TestPipelineStepWithoutMessage(t *testing.T) {
	ran := false
	p := &Pipeline{Route: "r", Steps: []NamedStep{
		{Name: "lost", Step: StepFunc(func(context.Context, *Message) (*Message, error) { return nil, nil })},
		{Name: "next", Step: StepFunc(func(_ context.Context, m *Message) (*Message, error) { ran = true; return m, nil })},
	}}
	_, err := p.Run(context.Background(), NewMessage())
	f := AsFault(err)
	if f.Status != 500 || f.Route != "r" || f.Internal != "step lost: the step returned no message" || f.Detail != "" || ran {
		t.Errorf("want a 500 fault naming step lost and no further step, got %+v (next ran: %v)", f, ran)
	}
}
