package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/certs"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/routes"
)

// serveOptions are serve's flags.
type serveOptions struct {
	config, listen, logLevel string
	tls                      certs.ServerOptions
	clientAuth               string
	gcPercent                gcPercentFlag
	memoryLimit              memoryLimitFlag
	workSlots                int
	debugErrors              bool
	bodyBudget               bodyBudgetFlag
	readTimeout              time.Duration
	dataDir, natsURL         string
	natsReplicas             int
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Serve the routes of a configuration directory, reloading them when its files change",
		Long: `Serve every route in the configuration directory (--config) over HTTP, or HTTPS with
--tls-cert and --tls-key, and answer GET /healthz. A change to a file the routes read is
loaded while serving; a broken edit is logged with its file:line:col and the previous
routes keep serving. SIGINT or SIGTERM stops taking requests and finishes those in
flight (at most 30s).

The server tunes itself for many small requests: --work-slots bounds how many requests
parse, map and serialise at once, --gc-percent and --memory-limit set the garbage
collector (GOGC and GOMEMLIMIT in the environment are kept), --body-budget and
--read-timeout bound the request bodies being received.`,
		Example: `  busbar serve --config examples --listen 127.0.0.1:8080
  busbar serve --config /etc/busbar --listen 0.0.0.0:8443 \
      --tls-cert server.pem --tls-key server-key.pem --client-ca ca.pem --client-auth require
  busbar serve --config examples --memory-limit 1GiB --gc-percent off --log-level debug`,
		Args:              argsBetween(0, 0, "usage: busbar serve [--config DIR] [--listen ADDR] [flags] (no arguments: the directory is --config DIR)"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(serve(o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.config, "config", "examples", "the configuration `DIR`: routes, connectors, maps")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "the host:port `ADDR` to listen on (port 0 picks a free one)")
	f.StringVar(&o.logLevel, "log-level", "info", "the least `LEVEL` logged: debug, info, warn or error")
	f.StringVar(&o.tls.CertFile, "tls-cert", "", "PEM server certificate `FILE`: serve HTTPS (renewed files are picked up without a restart)")
	f.StringVar(&o.tls.KeyFile, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	f.StringVar(&o.tls.ClientCAFile, "client-ca", "", "PEM `FILE` of the CAs whose client certificates are accepted (mutual TLS)")
	f.StringVar(&o.clientAuth, "client-auth", "", "with --client-ca: `require|verify-if-given` a client certificate")
	f.Var(&o.gcPercent, "gc-percent", fmt.Sprintf("GOGC for the server: a percentage or off (default %d; the GOGC variable, when set, is kept)", defaultGCPercent))
	f.Var(&o.memoryLimit, "memory-limit", fmt.Sprintf("soft memory limit, e.g. 512MiB, or off (default %.0f%% of the cgroup's memory limit, else %s; GOMEMLIMIT, when set, is kept)",
		cgroupShare*100, formatSize(defaultMemoryLimit)))
	f.IntVar(&o.workSlots, "work-slots", defaultWorkSlots(), "at most `N` REST and SOAP requests parse, map and serialise at once; the others wait their turn (0: no limit)")
	f.BoolVar(&o.debugErrors, "debug-errors", false, "show callers the internal detail of a route's faults (mapping file:line:col and expression, backend errors), not only the log; for development")
	f.Var(&o.bodyBudget, "body-budget", fmt.Sprintf("bytes of request bodies held at once, e.g. 128MiB, or off; past it requests get 503 (default 1/%d of the memory limit)", bodyBudgetShare))
	f.DurationVar(&o.readTimeout, "read-timeout", connectors.DefaultReadTimeout, "the `DURATION` a request's body may take to arrive (a route's shorter timeout bounds it further); slower bodies get 408")
	f.StringVar(&o.dataDir, "data-dir", delivery.DefaultDataDir, "the `DIR` where the embedded NATS server keeps async and scheduled routes' messages, checkpoints and idempotency keys (opened only when a route needs it)")
	f.StringVar(&o.natsURL, "nats-url", "", "external NATS (JetStream) server or cluster for async and scheduled routes and idempotency keys, instead of the embedded one")
	f.IntVar(&o.natsReplicas, "nats-replicas", 1, "copies of every stream and bucket on the --nats-url cluster: 1, 3 or 5 (3 survives the loss of one server)")
	cmd.MarkFlagDirname("config")
	cmd.MarkFlagDirname("data-dir")
	for _, name := range []string{"tls-cert", "tls-key", "client-ca"} {
		cmd.MarkFlagFilename(name)
	}
	choices(cmd, "log-level", "debug", "info", "warn", "error")
	choices(cmd, "client-auth", string(certs.RequireClientCert), string(certs.VerifyClientCertIfGiven))
	choices(cmd, "gc-percent", "off")
	choices(cmd, "memory-limit", "off")
	choices(cmd, "body-budget", "off")
	noFiles(cmd, "listen", "work-slots", "read-timeout", "nats-url")
	choices(cmd, "nats-replicas", "1", "3", "5")
	return cmd
}

func serve(o serveOptions, stdout, stderr io.Writer) int {
	if o.workSlots < 0 {
		fmt.Fprintf(stderr, "busbar: --work-slots %d: write a number of requests, or 0 for no limit\n", o.workSlots)
		return 2
	}
	switch {
	case o.natsReplicas != 1 && o.natsReplicas != 3 && o.natsReplicas != 5:
		fmt.Fprintf(stderr, "busbar: --nats-replicas %d: write 1, 3 or 5\n", o.natsReplicas)
		return 2
	case o.natsReplicas != 1 && o.natsURL == "":
		fmt.Fprintf(stderr, "busbar: --nats-replicas %d needs --nats-url: the embedded server is one server\n", o.natsReplicas)
		return 2
	}
	if o.readTimeout <= 0 {
		fmt.Fprintf(stderr, "busbar: --read-timeout %v: write a duration such as 30s\n", o.readTimeout)
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "busbar: --log-level %q: %v\n", o.logLevel, err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(log) // connectors log breaker changes and TLS warnings through it
	memoryLimit := decideMemoryPolicy(o.gcPercent, o.memoryLimit, os.Getenv, os.DirFS("/")).apply(log)
	budget := o.bodyBudget.bytes(memoryLimit)
	log.Info("work slots", slog.Int("work_slots", o.workSlots), slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	log.Info("request bodies", slog.String("body_budget", formatSizeOrOff(cmp.Or(budget, math.MaxInt64))),
		slog.String("read_timeout", o.readTimeout.String()))
	var tlsCfg *tls.Config
	if o.tls.CertFile != "" || o.tls.KeyFile != "" || o.tls.ClientCAFile != "" || o.clientAuth != "" {
		o.tls.ClientAuth = certs.ClientAuth(o.clientAuth)
		var kp *certs.KeyPair
		var err error
		if tlsCfg, kp, err = certs.Server(o.tls); err != nil {
			fmt.Fprintf(stderr, "busbar: %v\n", err)
			return 1
		}
		log.Info("serving HTTPS", slog.String("certificate", o.tls.CertFile),
			slog.Time("not_after", kp.NotAfter()), slog.String("client_auth", o.clientAuth))
	}

	// A reload keeps the buckets of the routes whose rate-limit did not change.
	rateLimits := routes.NewRateLimits()
	// Listen before loading: the demo's connectors call this same process,
	// and only the listener knows its port (--listen :0 picks one).
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(stderr, "busbar: %v\n", err)
		return 1
	}
	defer ln.Close()
	exportDemoURL(ln.Addr(), tlsCfg != nil)
	async := newAsyncDelivery(o.dataDir, o.natsURL, o.natsReplicas, log)
	defer async.Close() // last: after the server drained and the routes' workers stopped
	cfg, err := routes.Load(o.config, routes.WithRateLimits(rateLimits), async.option())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := connectors.NewServer(connectors.ServerConfig{Listen: o.listen, Logger: log, TLS: tlsCfg,
		Work: bus.NewWorkLimiter(o.workSlots), DebugErrors: o.debugErrors,
		ReadTimeout: o.readTimeout, BodyBudget: budget})
	if o.debugErrors {
		log.Warn("--debug-errors: callers see the internal detail of faults; not for production")
	}
	if err := srv.Swap(cfg.Endpoints()); err != nil {
		fmt.Fprintf(stderr, "busbar: %v\n", err)
		return 1
	}
	// Catch signals before saying we listen: whoever waits for that line may stop us at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "busbar listening on %s://%s (config %s)\n", scheme, ln.Addr(), o.config)
	for _, r := range cfg.Routes {
		fmt.Fprintf(stdout, "  route %s\n", r.Describe())
	}

	var current atomic.Pointer[routes.Config]
	current.Store(cfg)
	go func() {
		err := routes.Watch(ctx, cfg, func(next *routes.Config) {
			if err := srv.Swap(next.Endpoints()); err != nil {
				log.Error("reload refused, the previous routes keep serving", slog.String("error", err.Error()))
				next.Close()
				return
			}
			old := current.Swap(next)
			// Requests in flight may still use the old connectors; Close
			// only drops their idle connections.
			old.Close()
			log.Info("routes reloaded", slog.Int("routes", len(next.Routes)))
		}, func(err error) {
			log.Error("reload failed, the previous routes keep serving", slog.String("error", err.Error()))
		}, routes.WithRateLimits(rateLimits), async.option())
		if err != nil {
			log.Error("cannot watch the configuration directory", slog.String("error", err.Error()))
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		if err != nil {
			fmt.Fprintf(stderr, "busbar: %v\n", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "busbar: shutdown: %v\n", err)
		return 1
	}
	current.Load().Close()
	return 0
}

// exportDemoURL sets BUSBAR_DEMO_URL, which the demo's connectors default
// to, to this server's own URL unless the environment already sets it: the
// demo backends are routes of the same process, wherever it listens.
// Reloads read the same variable, so they keep following the listener.
func exportDemoURL(addr net.Addr, https bool) {
	if _, set := os.LookupEnv("BUSBAR_DEMO_URL"); set {
		return
	}
	os.Setenv("BUSBAR_DEMO_URL", selfURL(addr, https))
}

// selfURL is the URL this process reaches its own listener at: a wildcard
// address (0.0.0.0, ::) is not one to dial, loopback of its family is.
func selfURL(addr net.Addr, https bool) string {
	scheme := "http"
	if https {
		scheme = "https"
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}
