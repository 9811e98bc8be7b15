package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// bins are the programs benchrun built or found.
type bins struct {
	Busbar, Echo, RevProxy, Bridge string // built from this checkout
	Wrk, Nginx                     string // Debian packages
}

// server is a started target server.
type server struct {
	proc *proc
	addr string // 127.0.0.1:port
}

// env is what a table's servers need.
type env struct {
	ctx     context.Context
	sup     *supervisor
	bins    bins
	root    string // the checkout
	tmp     string
	backend string // http://127.0.0.1:port of the echo backend
	cert    string // S9's certificate and key
	key     string
	// busbarEnv is extra environment for Busbar only (-busbar-env).
	busbarEnv []string
}

func (e *env) startEcho() (*server, error) {
	return e.startGo("echo", nil, "", e.bins.Echo)
}

// startGo starts a Go server with --listen on a free port and waits until
// it answers.
func (e *env) startGo(name string, extraEnv []string, health string, args ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args = append(args, "--listen", addr)
	p, err := e.sup.start(name, extraEnv, args...)
	if err != nil {
		return nil, err
	}
	useTLS := false
	for _, a := range args {
		useTLS = useTLS || a == "--tls-cert"
	}
	if err := waitReady(e.ctx, p, addr, health, useTLS); err != nil {
		e.sup.stop(p)
		return nil, err
	}
	return &server{proc: p, addr: addr}, nil
}

// startBusbar serves bench/routes/<t.Config> against the echo backend.
func (e *env) startBusbar(t target) (*server, error) {
	args := []string{e.bins.Busbar, "serve", "--config", filepath.Join(e.root, "bench", "routes", t.Config)}
	if t.TLS {
		args = append(args, "--tls-cert", e.cert, "--tls-key", e.key)
	}
	if t.Async {
		// Never ./data in the checkout; a fresh store per start, so a table
		// does not inherit the previous one's queue.
		dir, err := os.MkdirTemp(e.tmp, "data-"+t.Config+"-")
		if err != nil {
			return nil, err
		}
		args = append(args, "--data-dir", dir)
	}
	return e.startGo("busbar-"+t.Config, append([]string{"BENCH_BACKEND=" + e.backend}, e.busbarEnv...), "/healthz", args...)
}

func (e *env) startRevProxy() (*server, error) {
	return e.startGo("revproxy", nil, "", e.bins.RevProxy, "--backend", e.backend, "--conns", "256")
}

func (e *env) startBridge() (*server, error) {
	return e.startGo("bridge", nil, "", e.bins.Bridge, "--backend", e.backend, "--conns", "256")
}

var nginxConf = template.Must(template.New("nginx.conf").Parse(`# Written by bench/cmd/benchrun: nginx as a plain pass-through proxy, tuned
# the way an operator would (keepalive to clients and to the upstream, bodies
# and replies buffered in memory), so it is the bar and not a straw man.
daemon off;
master_process on;
worker_processes {{.Workers}};
{{- if .User}}
user {{.User}};
{{- end}}
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    client_max_body_size 10m;
    client_body_buffer_size 1m;
    proxy_buffer_size 16k;
    proxy_buffers 64 16k;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream backend {
        server {{.Backend}};
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

type nginxParams struct {
	Workers              int
	User                 string
	Dir, Backend, Listen string
}

// startNginx runs Debian's nginx in the foreground with its own prefix and
// temp folders, as many workers as Busbar has cores. Run as root, its
// workers drop to nobody, as nginx always does.
func (e *env) startNginx(cores int) (*server, error) {
	dir := filepath.Join(e.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	prm := nginxParams{Workers: cores, Dir: dir, Backend: strings.TrimPrefix(e.backend, "http://"),
		Listen: "127.0.0.1:" + strconv.Itoa(port)}
	if os.Geteuid() == 0 {
		prm.User = "nobody"
		if _, err := user.LookupGroup("nogroup"); err == nil {
			prm.User += " nogroup"
		}
	}
	var b strings.Builder
	if err := nginxConf.Execute(&b, prm); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := e.sup.startWith("nginx", nil, syscall.SIGTERM, e.bins.Nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	if err := waitReady(e.ctx, p, prm.Listen, "", false); err != nil {
		e.sup.stop(p)
		return nil, fmt.Errorf("%w (nginx error.log: %s)", err, tail(filepath.Join(dir, "error.log"), 4))
	}
	return &server{proc: p, addr: prm.Listen}, nil
}

// selfSigned writes a certificate and key for 127.0.0.1 (S9).
func selfSigned(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "busbar bench"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "bench-cert.pem"), filepath.Join(dir, "bench-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
