package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// MinVersion is the oldest TLS version Busbar speaks, on both sides.
const MinVersion = tls.VersionTLS12

// ClientAuth says whether a listener asks callers for a certificate.
type ClientAuth string

const (
	// NoClientCert: callers are not asked for a certificate.
	NoClientCert ClientAuth = ""
	// RequireClientCert: every caller must present a certificate signed by a client CA.
	RequireClientCert ClientAuth = "require"
	// VerifyClientCertIfGiven: callers may present one; if they do, it must verify.
	VerifyClientCertIfGiven ClientAuth = "verify-if-given"
)

// ServerOptions are a listener's TLS settings.
type ServerOptions struct {
	CertFile, KeyFile string     // PEM server certificate (chain) and key
	ClientCAFile      string     // PEM CAs that sign client certificates (mutual TLS)
	ClientAuth        ClientAuth // "require" or "verify-if-given"; needs ClientCAFile
}

// Server returns a listener's tls.Config and the key pair it serves, which
// follows its files (see KeyPair).
func Server(o ServerOptions) (*tls.Config, *KeyPair, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, nil, errors.New("certs: a server needs both a certificate and a key file")
	}
	kp, err := LoadKeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: server certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: MinVersion, GetCertificate: kp.GetCertificate}
	switch o.ClientAuth {
	case NoClientCert:
		if o.ClientCAFile != "" {
			// A CA without a policy would silently accept anyone: make the choice explicit.
			return nil, nil, errors.New(`certs: a client CA is given without a client-auth policy: say "require" or "verify-if-given"`)
		}
		return cfg, kp, nil
	case RequireClientCert:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case VerifyClientCertIfGiven:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		return nil, nil, fmt.Errorf(`certs: client auth %q: write "require" or "verify-if-given"`, o.ClientAuth)
	}
	if o.ClientCAFile == "" {
		return nil, nil, fmt.Errorf("certs: client auth %q needs a client CA file", o.ClientAuth)
	}
	if cfg.ClientCAs, err = LoadCAPool(o.ClientCAFile); err != nil {
		return nil, nil, err
	}
	return cfg, kp, nil
}

// ClientOptions are an outbound connector's TLS settings.
type ClientOptions struct {
	CAFile             string // PEM CAs to trust instead of the system's
	CertFile, KeyFile  string // client certificate for mutual TLS
	ServerName         string // expected name in the server's certificate, when the URL's host differs
	InsecureSkipVerify bool   // accept any server certificate: tests against self-signed systems only
}

// Client returns an outbound tls.Config, and the client key pair when one
// is configured (it follows its files like a server's).
func Client(o ClientOptions) (*tls.Config, *KeyPair, error) {
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		pool, err := LoadCAPool(o.CAFile)
		if err != nil {
			return nil, nil, err
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, nil, errors.New("certs: a client certificate needs both cert and key")
	}
	if o.CertFile == "" {
		return cfg, nil, nil
	}
	kp, err := LoadKeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: client certificate: %w", err)
	}
	cfg.GetClientCertificate = kp.GetClientCertificate
	return cfg, kp, nil
}

// LoadCAPool reads every certificate of a PEM file into a pool.
func LoadCAPool(file string) (*x509.CertPool, error) {
	certs, err := readCertificates(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// NotAfter returns the earliest expiry among the certificates of a PEM file
// (a chain expires with its first link), for expiry metrics and checks.
func NotAfter(file string) (time.Time, error) {
	certs, err := readCertificates(file)
	if err != nil {
		return time.Time{}, err
	}
	first := certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	return first, nil
}

func readCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: PEM block %d: %w", file, n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", file)
	}
	return out, nil
}
