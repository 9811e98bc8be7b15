package connectors

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/busbar/busbar/certs"
)

// TLSConfig is a connector's `tls:` block, for https URLs.
type TLSConfig struct {
	// CA is a PEM file of the CAs to trust instead of the system's.
	CA string `yaml:"ca"`
	// Cert and Key are the PEM client certificate and key sent for mutual
	// TLS; renewed files are picked up without a restart.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ServerName is the name expected in the server's certificate, when it
	// differs from the URL's host (a backend reached by IP address).
	ServerName string `yaml:"server-name"`
	// InsecureSkipVerify accepts any server certificate. For a test system
	// with a self-signed certificate only; Busbar logs a warning.
	InsecureSkipVerify bool `yaml:"insecure-skip-verify"`
}

// ResolveFiles makes the connector's relative file names (TLS material)
// relative to dir, the configuration directory, and returns them, for the
// configuration watcher. The route loader calls it before Validate.
func (c *HTTPConfig) ResolveFiles(dir string) []string {
	if c.TLS == nil {
		return nil
	}
	var files []string
	for _, p := range []*string{&c.TLS.CA, &c.TLS.Cert, &c.TLS.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
		if *p != "" {
			files = append(files, *p)
		}
	}
	return files
}

// Files lists the files the connector reads (TLS material), resolved.
func (c *HTTPConfig) Files() []string {
	if c.TLS == nil {
		return nil
	}
	var out []string
	for _, p := range []string{c.TLS.CA, c.TLS.Cert, c.TLS.Key} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validate reads the files, so a missing or broken one is reported with the
// connector file, not at the first call.
func (c *TLSConfig) validate() error {
	if c == nil {
		return nil
	}
	if c.InsecureSkipVerify && c.CA != "" {
		return errors.New(`field "tls.insecure-skip-verify": it ignores the "ca" you gave; remove one of them`)
	}
	if c.CA != "" {
		if _, err := certs.LoadCAPool(c.CA); err != nil {
			return fmt.Errorf(`field "tls.ca": %v`, err)
		}
	}
	switch {
	case c.Cert == "" && c.Key != "":
		return errors.New(`field "tls.key": a client key needs its certificate ("cert")`)
	case c.Cert != "" && c.Key == "":
		return errors.New(`field "tls.cert": a client certificate needs its key ("key")`)
	case c.Cert != "":
		if _, err := certs.LoadKeyPair(c.Cert, c.Key); err != nil {
			return fmt.Errorf(`field "tls.cert": %v`, err)
		}
	}
	return nil
}

// client builds the transport's TLS settings; nil means Go's defaults with
// TLS 1.2 as the floor.
func (c *TLSConfig) client(connector string, log *slog.Logger) (*tls.Config, error) {
	if c == nil {
		return &tls.Config{MinVersion: certs.MinVersion}, nil
	}
	if c.InsecureSkipVerify {
		log.Warn("connector does not verify the server's certificate (tls.insecure-skip-verify): use it against test systems only",
			slog.String("connector", connector))
	}
	cfg, _, err := certs.Client(certs.ClientOptions{CAFile: c.CA, CertFile: c.Cert, KeyFile: c.Key,
		ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify})
	if err != nil {
		return nil, fmt.Errorf("connector %q: tls: %w", connector, err)
	}
	return cfg, nil
}
