package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/busbar/busbar/delivery"
)

// storeFlags say where the delivery store is: the embedded server's data
// directory (only while no node runs on it: the directory is locked), or
// the NATS cluster the nodes share, which any number of clients may read.
type storeFlags struct {
	dataDir string
	natsURL string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "data", "the data directory of a stopped node's embedded store")
	cmd.Flags().StringVar(&f.natsURL, "nats-url", "", "the NATS cluster the nodes share (instead of --data-dir)")
	cmd.MarkFlagDirname("data-dir")
}

func (f *storeFlags) open(ctx context.Context) (*delivery.Store, error) {
	st, err := delivery.Open(ctx, delivery.Config{DataDir: f.dataDir, NATSURL: f.natsURL})
	if err != nil && f.natsURL == "" && strings.Contains(err.Error(), "in use") {
		return nil, fmt.Errorf("%w\n(a node is running on it: stop it, or point --nats-url at the cluster it uses)", err)
	}
	return st, err
}

// filterFlags select messages for list and replay.
type filterFlags struct {
	route, state, key string
	since, until      string
	limit             int
}

func (f *filterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.route, "route", "", "only the messages of this route")
	cmd.Flags().StringVar(&f.state, "state", "", "only messages in this state: queued, delivering, delivered, dead or discarded")
	cmd.Flags().StringVar(&f.key, "key", "", "only the messages of this business key (e.g. 1000-2026-EXP-42)")
	cmd.Flags().StringVar(&f.since, "since", "", "accepted at or after: RFC 3339 time, or a duration back from now (2h, 30m)")
	cmd.Flags().StringVar(&f.until, "until", "", "accepted before: RFC 3339 time, or a duration back from now")
	cmd.Flags().IntVar(&f.limit, "limit", 100, "at most this many messages, the oldest first (at most 10000)")
	cmd.RegisterFlagCompletionFunc("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"queued", "delivering", "delivered", "dead", "discarded"}, cobra.ShellCompDirectiveNoFileComp
	})
}

func (f *filterFlags) filter(now time.Time) (delivery.Filter, error) {
	out := delivery.Filter{Route: f.route, State: delivery.State(f.state), BusinessKey: f.key, Limit: f.limit}
	switch out.State {
	case "", delivery.Queued, delivery.Delivering, delivery.Delivered, delivery.Dead, delivery.Discarded:
	default:
		return out, usageError(fmt.Sprintf("--state %q: want queued, delivering, delivered, dead or discarded", f.state))
	}
	var err error
	if out.Since, err = parseWhen("since", f.since, now); err != nil {
		return out, err
	}
	out.Until, err = parseWhen("until", f.until, now)
	return out, err
}

// parseWhen reads a time flag: an instant, or how long ago.
func parseWhen(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError(fmt.Sprintf("--%s %q: want an RFC 3339 time (2026-12-08T09:00:00Z) or a duration (2h)", name, v))
	}
	return t, nil
}

func newMessagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "messages",
		Short: "Find, inspect, replay or discard the messages of asynchronous routes",
		Long: `Operate on the delivery store of asynchronous routes (see docs/delivery.md): list
messages by route, state, business key and time; show one with its history of
attempts and errors; replay dead letters (through the idempotency check again); discard
a message that must not be delivered.

The store is a stopped node's data directory (--data-dir, default ./data; a running
node locks it) or the NATS cluster the nodes share (--nats-url).`,
	}
	cmd.AddCommand(newMessagesListCmd(), newMessagesShowCmd(), newMessagesReplayCmd(), newMessagesDiscardCmd())
	return cmd
}

func newMessagesListCmd() *cobra.Command {
	var sf storeFlags
	var ff filterFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List messages, the oldest first",
		Example: `  busbar messages list --state dead
  busbar messages list --route oa-reimbursement-async --since 24h
  busbar messages list --key 1000-2026-EXP-42 --json`,
		Args: argsBetween(0, 0, "usage: busbar messages list [flags]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			return withStore(cmd, &sf, func(ctx context.Context, st *delivery.Store) error {
				list, err := st.List(ctx, f)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), list)
				}
				writeStatusTable(cmd.OutOrStdout(), list)
				return nil
			})
		},
	}
	sf.register(cmd)
	ff.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statuses as a JSON array")
	return cmd
}

func newMessagesShowCmd() *cobra.Command {
	var sf storeFlags
	var payload bool
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one message's status, attempts, errors and reply as JSON",
		Example: "  busbar messages show 0K4Z6DQ1C9XNOQ7A1V3H2F --payload",
		Args:    argsBetween(1, 1, "usage: busbar messages show ID [--payload]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &sf, func(ctx context.Context, st *delivery.Store) error {
				s, err := st.Get(ctx, args[0])
				if err != nil {
					return err
				}
				if !payload {
					return writeJSON(cmd.OutOrStdout(), s)
				}
				env, err := st.Payload(ctx, args[0])
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), struct {
					*delivery.Status
					Payload payloadView `json:"payload"`
				}{s, viewPayload(env)})
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&payload, "payload", false, "include the original request as it was accepted")
	return cmd
}

func newMessagesReplayCmd() *cobra.Command {
	var sf storeFlags
	var ff filterFlags
	cmd := &cobra.Command{
		Use:   "replay [ID...]",
		Short: "Put dead (or discarded) messages back in their queue",
		Long: `Replay the messages named, or every dead or discarded message the filter selects.
A replay is a new copy of the original request with a fresh count of attempts; the
earlier history is kept. It passes the idempotency check again: a message whose key
now belongs to another is not replayed, and is reported.`,
		Example: `  busbar messages replay 0K4Z6DQ1C9XNOQ7A1V3H2F
  busbar messages replay --route oa-reimbursement-async --state dead --since 2h`,
		RunE: func(cmd *cobra.Command, args []string) error {
			byFilter := cmd.Flags().Changed("route") || cmd.Flags().Changed("state") || cmd.Flags().Changed("key") ||
				cmd.Flags().Changed("since") || cmd.Flags().Changed("until")
			if len(args) > 0 == byFilter {
				return usageError("usage: busbar messages replay ID... | busbar messages replay --route R [--state dead] [--key K] [--since T]")
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			return withStore(cmd, &sf, func(ctx context.Context, st *delivery.Store) error {
				if byFilter {
					ids, err := st.ReplayAll(ctx, f)
					for _, id := range ids {
						fmt.Fprintf(cmd.OutOrStdout(), "%s replayed\n", id)
					}
					return err
				}
				return eachID(cmd, args, "replayed", st.Replay)
			})
		},
	}
	sf.register(cmd)
	ff.register(cmd)
	return cmd
}

func newMessagesDiscardCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "discard ID...",
		Short: "Mark queued or dead messages as never to be delivered",
		Long: `Discard keeps a message's payload and history for the retention period, and its
idempotency key stays taken (a resubmission gets the discarded status back); replay can
still bring it back.`,
		Example: "  busbar messages discard 0K4Z6DQ1C9XNOQ7A1V3H2F",
		Args:    argsBetween(1, 1000, "usage: busbar messages discard ID..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &sf, func(ctx context.Context, st *delivery.Store) error {
				return eachID(cmd, args, "discarded", st.Discard)
			})
		},
	}
	sf.register(cmd)
	return cmd
}

// withStore opens the store, runs fn and closes it; an error of fn is
// printed and is exit status 1.
func withStore(cmd *cobra.Command, sf *storeFlags, fn func(context.Context, *delivery.Store) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "busbar:", err)
		return exitStatus(1)
	}
	defer st.Close()
	if err := fn(ctx, st); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "busbar:", err)
		return exitStatus(1)
	}
	return nil
}

// eachID applies op to every id, says what happened to each, and fails
// when any failed: one unknown id must not stop the others.
func eachID(cmd *cobra.Command, ids []string, done string, op func(context.Context, string) error) error {
	var errs []error
	for _, id := range ids {
		if err := op(cmd.Context(), id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", id, done)
	}
	return errors.Join(errs...)
}

// payloadView is a stored request as an operator reads it: the body as
// text when it is text (XML and JSON are), base64 otherwise.
type payloadView struct {
	ContentType    string            `json:"contentType,omitempty"`
	SOAPAction     string            `json:"soapAction,omitempty"`
	CorrelationID  string            `json:"correlationId,omitempty"`
	IdempotencyKey string            `json:"idempotencyKey,omitempty"`
	Caller         string            `json:"caller,omitempty"`
	Path           string            `json:"path,omitempty"`
	Query          string            `json:"query,omitempty"`
	Vars           map[string]string `json:"vars,omitempty"`
	Body           string            `json:"body,omitempty"`
	BodyBase64     []byte            `json:"bodyBase64,omitempty"`
}

func viewPayload(e *delivery.Envelope) payloadView {
	v := payloadView{ContentType: e.ContentType, SOAPAction: e.SOAPAction, CorrelationID: e.CorrelationID,
		IdempotencyKey: e.IdempotencyKey, Caller: e.Caller, Path: e.Path, Query: e.Query, Vars: e.Vars}
	if utf8.Valid(e.Body) {
		v.Body = string(e.Body)
	} else {
		v.BodyBase64 = e.Body
	}
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeStatusTable prints one line per message, for a terminal.
func writeStatusTable(w io.Writer, list []*delivery.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROUTE\tSTATE\tACCEPTED\tATTEMPTS\tBUSINESS KEY\tLAST ERROR")
	for _, s := range list {
		last := s.LastError
		if len(last) > 60 {
			last = last[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Route, s.State,
			s.Accepted.UTC().Format(time.RFC3339), len(s.Attempts), s.BusinessKey, last)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d messages\n", len(list))
}
