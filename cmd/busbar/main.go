// Command busbar is the Busbar enterprise service bus.
//
//	busbar serve    --config DIR [--listen ADDR]   serve the routes in DIR, reloading on change
//	busbar validate DIR                            check every route, connector and map file
//	busbar certs dev --out DIR                     write a development CA and certificates
//	busbar map --map FILE --input FILE             dry-run one mapping over one document
//	busbar test [DIR]                              run the route test cases in DIR/tests/*.yaml
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/certs"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/routes"
	"github.com/busbar/busbar/routes/routetest"
)

const usage = `busbar — an enterprise service bus between SOAP/XML and REST/JSON systems

Usage:
  busbar serve    --config DIR [--listen ADDR]   serve the routes in DIR (reloads on change)
  busbar validate DIR                            check every route, connector and map file in DIR
  busbar certs dev --out DIR [--days N]          write a development CA, server and client certificates
  busbar map --map FILE --input FILE [--var NAME=VALUE ...] [--table-dir DIR] [--schema WSDL|XSD]
                                                 print what a mapping builds from a document
  busbar test [-v] [DIR | FILE]                  run the route test cases in DIR/tests/*.yaml

Run 'busbar COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "certs":
		return certsCmd(args[1:], stdout, stderr)
	case "map":
		return mapCmd(args[1:], stdout, stderr)
	case "test":
		return testCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "busbar: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: busbar validate DIR")
		return 2
	}
	// Every problem of every file, the route test cases' included: one run
	// of validate should be enough to fix them all.
	cfg, err := routes.Load(fs.Arg(0))
	testErr := routetest.Check(fs.Arg(0))
	for _, e := range []error{err, testErr} {
		if e != nil {
			fmt.Fprintln(stderr, e)
		}
	}
	if err != nil || testErr != nil {
		if cfg != nil {
			cfg.Close()
		}
		return 1
	}
	defer cfg.Close()
	fmt.Fprintf(stdout, "%s: %d routes and %d connectors are valid\n", fs.Arg(0), len(cfg.Routes), len(cfg.Connectors))
	return 0
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("config", "examples", "configuration directory (routes, connectors, maps)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	var tlsOpts certs.ServerOptions
	fs.StringVar(&tlsOpts.CertFile, "tls-cert", "", "PEM server certificate: serve HTTPS (renewed files are picked up without a restart)")
	fs.StringVar(&tlsOpts.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&tlsOpts.ClientCAFile, "client-ca", "", "PEM CAs whose client certificates are accepted (mutual TLS)")
	clientAuth := fs.String("client-auth", "", "with --client-ca: require or verify-if-given")
	var gcPercent gcPercentFlag
	var memLimit memoryLimitFlag
	fs.Var(&gcPercent, "gc-percent", fmt.Sprintf("GOGC for the server: a percentage or off (default %d; the GOGC variable, when set, is kept)", defaultGCPercent))
	fs.Var(&memLimit, "memory-limit", fmt.Sprintf("soft memory limit, e.g. 512MiB, or off (default %.0f%% of the cgroup's memory limit, else %s; GOMEMLIMIT, when set, is kept)",
		cgroupShare*100, formatSize(defaultMemoryLimit)))
	workSlots := fs.Int("work-slots", defaultWorkSlots(), "REST and SOAP requests that parse, map and serialise at once; the others wait their turn (0: no limit)")
	debugErrors := fs.Bool("debug-errors", false, "show callers the internal detail of a route's faults (mapping file:line:col and expression, backend errors), not only the log; for development")
	var bodyBudget bodyBudgetFlag
	fs.Var(&bodyBudget, "body-budget", fmt.Sprintf("bytes of request bodies held at once, e.g. 128MiB, or off; past it requests get 503 (default 1/%d of the memory limit)", bodyBudgetShare))
	readTimeout := fs.Duration("read-timeout", connectors.DefaultReadTimeout, "time a request's body may take to arrive (a route's shorter timeout bounds it further); slower bodies get 408")
	dataDir := fs.String("data-dir", delivery.DefaultDataDir, "where the embedded NATS server keeps async routes' messages (opened only when a route is async)")
	natsURL := fs.String("nats-url", "", "external NATS (JetStream) server or cluster for async routes, instead of the embedded one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *workSlots < 0 {
		fmt.Fprintf(stderr, "busbar: --work-slots %d: write a number of requests, or 0 for no limit\n", *workSlots)
		return 2
	}
	if *readTimeout <= 0 {
		fmt.Fprintf(stderr, "busbar: --read-timeout %v: write a duration such as 30s\n", *readTimeout)
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "busbar: --log-level %q: %v\n", *level, err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(log) // connectors log breaker changes and TLS warnings through it
	memoryLimit := decideMemoryPolicy(gcPercent, memLimit, os.Getenv, os.DirFS("/")).apply(log)
	budget := bodyBudget.bytes(memoryLimit)
	log.Info("work slots", slog.Int("work_slots", *workSlots), slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	log.Info("request bodies", slog.String("body_budget", formatSizeOrOff(cmp.Or(budget, math.MaxInt64))),
		slog.String("read_timeout", readTimeout.String()))
	var tlsCfg *tls.Config
	if tlsOpts.CertFile != "" || tlsOpts.KeyFile != "" || tlsOpts.ClientCAFile != "" || *clientAuth != "" {
		tlsOpts.ClientAuth = certs.ClientAuth(*clientAuth)
		var kp *certs.KeyPair
		var err error
		if tlsCfg, kp, err = certs.Server(tlsOpts); err != nil {
			fmt.Fprintf(stderr, "busbar: %v\n", err)
			return 1
		}
		log.Info("serving HTTPS", slog.String("certificate", tlsOpts.CertFile),
			slog.Time("not_after", kp.NotAfter()), slog.String("client_auth", *clientAuth))
	}

	// A reload keeps the buckets of the routes whose rate-limit did not change.
	rateLimits := routes.NewRateLimits()
	// Listen before loading: the demo's connectors call this same process,
	// and only the listener knows its port (--listen :0 picks one).
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "busbar: %v\n", err)
		return 1
	}
	defer ln.Close()
	exportDemoURL(ln.Addr(), tlsCfg != nil)
	async := newAsyncDelivery(*dataDir, *natsURL, log)
	defer async.Close() // last: after the server drained and the routes' workers stopped
	cfg, err := routes.Load(*dir, routes.WithRateLimits(rateLimits), async.option())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := connectors.NewServer(connectors.ServerConfig{Listen: *listen, Logger: log, TLS: tlsCfg,
		Work: bus.NewWorkLimiter(*workSlots), DebugErrors: *debugErrors,
		ReadTimeout: *readTimeout, BodyBudget: budget})
	if *debugErrors {
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
	fmt.Fprintf(stdout, "busbar listening on %s://%s (config %s)\n", scheme, ln.Addr(), *dir)
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

func certsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "dev" {
		fmt.Fprintln(stderr, "usage: busbar certs dev --out DIR [--days N]")
		return 2
	}
	fs := flag.NewFlagSet("certs dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write ca.pem, server.pem, client.pem and their keys into")
	days := fs.Int("days", 30, "validity in days (development certificates should not live long)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 || *days < 1 || *days > 397 {
		fmt.Fprintln(stderr, "usage: busbar certs dev --out DIR [--days N]  (1 ≤ N ≤ 397)")
		return 2
	}
	if err := certs.WriteDevSet(*out, time.Duration(*days)*24*time.Hour); err != nil {
		fmt.Fprintf(stderr, "busbar: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a development CA and certificates for %s to %s (valid %d days):\n", strings.Join(certs.DevHosts, ", "), *out, *days)
	for _, name := range certs.DevFiles {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(*out, name))
	}
	fmt.Fprintf(stdout, "serve with:  busbar serve --tls-cert %s --tls-key %s --client-ca %s --client-auth require\n",
		filepath.Join(*out, "server.pem"), filepath.Join(*out, "server-key.pem"), filepath.Join(*out, "ca.pem"))
	return 0
}
