package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevValidity is how long development certificates live unless told
// otherwise: long enough for a working week, short enough that a copied dev
// key is soon worthless.
const DevValidity = 30 * 24 * time.Hour

// DevHosts are the names a development server certificate covers.
var DevHosts = []string{"localhost", "127.0.0.1", "::1"}

// CA is a small certificate authority for local set-ups and tests: ECDSA
// P-256 keys, short validity. It is not meant to guard production traffic.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // the CA certificate, PEM-encoded
}

// NewDevCA makes a self-signed CA valid for validity (DevValidity when 0).
func NewDevCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name, validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// IssueServer signs a server certificate for hosts (names or IP addresses;
// DevHosts when empty). It returns the certificate and key as PEM.
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		hosts = DevHosts
	}
	return ca.issue(hosts[0], validity, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				t.IPAddresses = append(t.IPAddresses, ip)
			} else {
				t.DNSNames = append(t.DNSNames, h)
			}
		}
	})
}

// IssueClient signs a client certificate (mutual TLS) with common name cn.
func (ca *CA) IssueClient(cn string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(cn, validity, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

func (ca *CA) issue(cn string, validity time.Duration, shape func(*x509.Certificate)) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := template(cn, validity)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	shape(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issue %q: %w", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	if validity <= 0 {
		validity = DevValidity
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Busbar development"}},
		NotBefore:    now.Add(-5 * time.Minute), // tolerate small clock skew between machines
		NotAfter:     now.Add(validity),
	}, nil
}

// KeyPEM returns the CA's private key as PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// DevFiles names the files WriteDevSet writes, relative to its directory.
var DevFiles = []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"}

// WriteDevSet writes a fresh development CA, a server certificate for
// DevHosts and a client certificate into dir (created if needed): the files
// of DevFiles. Keys are written readable by the owner only. Existing files
// are replaced atomically, so a server watching them reloads a whole pair.
func WriteDevSet(dir string, validity time.Duration) error {
	ca, err := NewDevCA("Busbar development CA", validity)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	srvCert, srvKey, err := ca.IssueServer(nil, validity)
	if err != nil {
		return err
	}
	cliCert, cliKey, err := ca.IssueClient("busbar-dev-client", validity)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	var errs []error
	for i, data := range [][]byte{ca.PEM, caKey, srvCert, srvKey, cliCert, cliKey} {
		mode := os.FileMode(0o644)
		if i%2 == 1 {
			mode = 0o600
		}
		errs = append(errs, WriteFileAtomic(filepath.Join(dir, DevFiles[i]), data, mode))
	}
	return errors.Join(errs...)
}

// WriteFileAtomic writes data to a temporary file beside path and renames it
// into place, so a reader never sees half a certificate.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// CAFromPEM reads back a CA that WriteDevSet wrote (ca.pem, ca-key.pem), to
// issue more certificates from it.
func CAFromPEM(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("certs: CA key is %T, want ECDSA", pair.PrivateKey)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certs: the certificate is not a CA")
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}
