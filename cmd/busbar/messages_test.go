package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/delivery"
)

// A data directory with one delivered and one dead message, as a stopped
// node leaves it.
func messagesFixture(t *testing.T) (dir, delivered, dead string) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	st, err := delivery.Open(ctx, delivery.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	submit := func(body, key string) string {
		id, err := st.Accept(ctx, "vouchers", &delivery.Submission{Body: []byte(body), ContentType: "application/json", BusinessKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	delivered = submit(`{"voucherNo":"EXP-1"}`, "1000-EXP-1")
	dead = submit(`{"voucherNo":"EXP-2"}`, "1000-EXP-2")
	w, err := st.StartWorker(ctx, "vouchers", delivery.RouteConfig{}, delivery.DelivererFunc(
		func(_ context.Context, env *delivery.Envelope) ([]byte, string, error) {
			if env.ID == dead {
				return nil, "", bus.ClientFault(422, "SAP rejected the voucher", "cost centre 4711 is locked")
			}
			return []byte(`{"documentNumber":"0100000042"}`), "application/json", nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, want := range []struct {
		id    string
		state delivery.State
	}{{delivered, delivery.Delivered}, {dead, delivery.Dead}} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := st.Get(ctx, want.id)
			if err == nil && s.State == want.state {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %s: want %s within 10s, got %+v %v", want.id, want.state, s, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return dir, delivered, dead
}

func TestMessagesCommands(t *testing.T) {
	dir, delivered, dead := messagesFixture(t)
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append(args, "--data-dir", dir), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := cli("messages", "list")
	if code != 0 || !strings.Contains(out, delivered) || !strings.Contains(out, dead) || !strings.Contains(out, "2 messages") ||
		!strings.Contains(out, "1000-EXP-2") || !strings.Contains(out, "cost centre 4711 is locked") {
		t.Errorf("list: want both messages with their keys and the dead one's error, got %d\n%s%s", code, out, errOut)
	}

	code, out, _ = cli("messages", "list", "--state", "dead", "--json")
	var list []delivery.Status
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0].ID != dead {
		t.Errorf("list --state dead --json: want only %s, got %d %v\n%s", dead, code, err, out)
	}

	code, out, _ = cli("messages", "show", delivered, "--payload")
	if code != 0 || !strings.Contains(out, `"state": "delivered"`) || !strings.Contains(out, `"body": "{\"voucherNo\":\"EXP-1\"}"`) {
		t.Errorf("show --payload: want the status and the original body, got %d\n%s", code, out)
	}

	if code, out, errOut = cli("messages", "replay", dead); code != 0 || out != dead+" replayed\n" {
		t.Errorf("replay: got %d %q %q", code, out, errOut)
	}
	if code, out, _ = cli("messages", "list", "--state", "queued", "--json"); code != 0 || !strings.Contains(out, dead) {
		t.Errorf("after replay the message should be queued again, got %d\n%s", code, out)
	}
	if code, out, errOut = cli("messages", "discard", dead, "no-such-id"); code != 1 || out != dead+" discarded\n" || !strings.Contains(errOut, "no-such-id") {
		t.Errorf("discard of a known and an unknown id: want the first discarded and exit 1 naming the second, got %d %q %q", code, out, errOut)
	}

	if code, _, errOut = cli("messages", "list", "--state", "lost"); code != 2 || !strings.Contains(errOut, `--state "lost"`) {
		t.Errorf("a bad state is a usage error naming it, got %d %q", code, errOut)
	}
	if code, _, errOut = cli("messages", "replay"); code != 2 {
		t.Errorf("replay with neither ids nor a filter is a usage error, got %d %q", code, errOut)
	}
}

// A running node locks its data directory: the command says so and what
// to do instead, rather than open a second server on the same files.
func TestMessagesDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	st, err := delivery.Open(context.Background(), delivery.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"messages", "list", "--data-dir", dir}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "in use") || !strings.Contains(errOut.String(), "--nats-url") {
		t.Errorf("want exit 1 saying the directory is in use and how to reach the cluster, got %d %q", code, errOut.String())
	}
}
