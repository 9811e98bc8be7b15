package connectors

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/busbar/busbar/internal/cputime"
)

// exchangeCases are a connector without wrappers and with each of them
// (defaults otherwise).
var exchangeCases = []struct {
	name string
	cfg  HTTPConfig
}{
	{"plain", HTTPConfig{Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Disabled: true}}},
	{"retry", HTTPConfig{Breaker: BreakerConfig{Disabled: true}}},
	{"breaker", HTTPConfig{Retry: RetryConfig{Attempts: 1}}},
	{"retry+breaker", HTTPConfig{}},
	{"retry+breaker+max-inflight", HTTPConfig{MaxInflight: 64}},
}

// BenchmarkExchange measures what the resilience wrappers cost on calls that
// succeed (retries and breaker configured, never triggered), against a
// loopback backend.
//
//	go test ./connectors -run '^$' -bench Exchange -benchmem -count 6
func BenchmarkExchange(b *testing.B) {
	reply := []byte(`{"ok":true,"id":"0042"}`)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}))
	defer backend.Close()
	body := []byte(`{"companyCode":"1000","voucherNo":"EXP-2026-0001","lines":[{"amount":"1250.00"}]}`)
	for _, c := range exchangeCases {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.URL = backend.URL
			k, err := cfg.Build("bench")
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			o := k.(*HTTPConnector).outbound
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // a route always has a deadline
			defer cancel()
			b.ReportAllocs()
			start := cputime.Process()
			defer func() { cputime.Report(b, start, time.Nanosecond) }()
			for b.Loop() {
				resp, _, err := o.exchange(ctx, http.MethodPost, "/vouchers",
					http.Header{"Content-Type": {"application/json"}}, own(body), "corr-1")
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}

// stubTransport answers every request from memory, so BenchmarkWrappers
// measures the wrappers alone, without loopback noise.
type stubTransport struct{ body []byte }

func (s stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(s.body)), Request: r}, nil
}

// BenchmarkWrappers is BenchmarkExchange with an in-memory backend: the
// difference between its cases is what retries, breaker and in-flight cap
// cost per call, in absolute terms.
func BenchmarkWrappers(b *testing.B) {
	body := []byte(`{"companyCode":"1000","voucherNo":"EXP-2026-0001","lines":[{"amount":"1250.00"}]}`)
	for _, c := range exchangeCases {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.URL = "http://backend.invalid"
			k, err := cfg.Build("bench")
			if err != nil {
				b.Fatal(err)
			}
			o := k.(*HTTPConnector).outbound
			o.client.Transport, o.client.Timeout = stubTransport{[]byte(`{"ok":true}`)}, 0
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			start := cputime.Process()
			defer func() { cputime.Report(b, start, time.Nanosecond) }()
			for b.Loop() {
				if _, _, err := o.exchange(ctx, http.MethodPost, "/vouchers",
					http.Header{"Content-Type": {"application/json"}}, own(body), "corr-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
