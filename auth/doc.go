// Package auth holds Busbar's inbound authentication policies: API keys,
// HTTP Basic, JWT bearer tokens, and any-of / all-of combinations of named
// policies. Each kind is registered by name (Register), and each policy
// lives in its own YAML file, decoded strictly and validated in one place
// (Load).
//
// This stage is not wired yet: no route, listener or connector uses a
// policy, and nothing here imports routes or connectors (DESIGN.md keeps
// it that way: routes will ask auth, never the reverse). The next stage
// attaches policies to routes (`auth: oa-clients`, `auth: none` written
// out to open a route) and puts the Identity into mappings and logs.
//
// Lifecycle: Register in init() → Load (decode → validate → build) →
// Authenticate per request. Policies are immutable once built, so they are
// safe for concurrent use and need no Close.
package auth
