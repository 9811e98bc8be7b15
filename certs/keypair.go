// Package certs holds Busbar's TLS material: server certificates that reload
// without a restart, client certificates for mutual TLS, CA pools, the
// expiry dates the admin side reports, and a small development CA for local
// set-ups and tests.
//
// certs is a leaf: it imports the standard library only, so both the
// listeners and the outbound connectors can use it.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, a KeyPair looks at its files.
const DefaultCheckInterval = time.Second

// KeyPair is a certificate and its private key, read from PEM files, that
// follows the files: when either changes on disk (a renewal, a rotation by
// cert-manager or certbot), the next handshake after the check interval uses
// the new pair. The files are looked at (two stat calls) at most once per
// CheckInterval whatever the handshake rate, so the cost per handshake stays
// an atomic load. A pair that does not load — a half-written file, a key that
// does not match — leaves the previous one in use; LastError says why.
type KeyPair struct {
	certFile, keyFile string
	// CheckInterval bounds how often the files are looked at; 0 means
	// DefaultCheckInterval, a negative value means at every handshake (tests).
	CheckInterval time.Duration

	cur       atomic.Pointer[loadedPair]
	lastCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one reload at a time
	lastErr   atomic.Pointer[error]
}

type loadedPair struct {
	cert     *tls.Certificate
	certStat os.FileInfo
	keyStat  os.FileInfo
}

// LoadKeyPair reads a PEM certificate (chain) and its PEM private key.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	p, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cur.Store(p)
	k.lastCheck.Store(time.Now().UnixNano())
	return k, nil
}

func (k *KeyPair) load() (*loadedPair, error) {
	cs, err := os.Stat(k.certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	ks, err := os.Stat(k.keyFile)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", k.certFile, k.keyFile, err)
	}
	if cert.Leaf == nil { // Go fills Leaf since 1.23; keep the guard for older GODEBUG settings
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", k.certFile, err)
		}
	}
	return &loadedPair{cert: &cert, certStat: cs, keyStat: ks}, nil
}

// Certificate returns the pair in use, looking at the files first when the
// check interval has passed.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.maybeReload()
	return k.cur.Load().cert
}

// GetCertificate serves as tls.Config.GetCertificate for listeners.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate serves as tls.Config.GetClientCertificate for
// outbound connections (mutual TLS).
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// NotAfter is when the certificate in use expires.
func (k *KeyPair) NotAfter() time.Time { return k.cur.Load().cert.Leaf.NotAfter }

// Leaf is the certificate in use, parsed.
func (k *KeyPair) Leaf() *x509.Certificate { return k.cur.Load().cert.Leaf }

// LastError is why the latest reload attempt failed, or nil when the files
// in use are the ones on disk.
func (k *KeyPair) LastError() error {
	if p := k.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (k *KeyPair) maybeReload() {
	interval := k.CheckInterval
	if interval == 0 {
		interval = DefaultCheckInterval
	}
	now := time.Now().UnixNano()
	last := k.lastCheck.Load()
	if interval > 0 && now-last < int64(interval) {
		return
	}
	// Only the handshake that wins the swap looks at the files; the others
	// go on with the pair in use.
	if !k.lastCheck.CompareAndSwap(last, now) {
		return
	}
	k.Reload()
}

// Reload re-reads the files if they changed since they were loaded. It
// reports the error that kept the previous pair in use, if any.
func (k *KeyPair) Reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.cur.Load()
	cs, err1 := os.Stat(k.certFile)
	ks, err2 := os.Stat(k.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		k.lastErr.Store(&err)
		return err
	}
	if unchanged(cur.certStat, cs) && unchanged(cur.keyStat, ks) {
		return k.LastError()
	}
	p, err := k.load()
	if err != nil {
		// The stats stay those of the pair in use, so the next check tries again.
		k.lastErr.Store(&err)
		return err
	}
	k.cur.Store(p)
	k.lastErr.Store(nil)
	return nil
}

// unchanged compares what a rotation changes: the file itself (a rename puts
// a new inode in place), its size and its modification time.
func unchanged(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
