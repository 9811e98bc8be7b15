package connectors

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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
	for _, c := range []struct {
		name string
		cfg  HTTPConfig
	}{
		{"plain", HTTPConfig{Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Disabled: true}}},
		{"retry", HTTPConfig{Breaker: BreakerConfig{Disabled: true}}},
		{"breaker", HTTPConfig{Retry: RetryConfig{Attempts: 1}}},
		{"retry+breaker", HTTPConfig{}},
		{"retry+breaker+max-inflight", HTTPConfig{MaxInflight: 64}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.cfg.URL = backend.URL
			k, err := c.cfg.Build("bench")
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			o := k.(*HTTPConnector).outbound
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // a route always has a deadline
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				resp, _, err := o.exchange(ctx, http.MethodPost, backend.URL+"/vouchers",
					http.Header{"Content-Type": {"application/json"}}, body, "corr-1")
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}
