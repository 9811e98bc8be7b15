package bus

import (
	"fmt"
	"sort"
	"sync"
)

// ConnectorConfig is the plain configuration struct of one kind of outbound
// connector. The route loader decodes a connector file strictly into a fresh
// value (from ConnectorKind.New), then calls Validate and Build. Config
// structs carry `yaml` tags; their doc comments are the reference.
type ConnectorConfig interface {
	// Validate checks the configuration alone; errors name the field.
	Validate() error
	// Build makes a ready connector. name is the connector's name in route files.
	Build(name string) (Connector, error)
}

// ConnectorKind registers one kind of connector ("soap", "http").
type ConnectorKind struct {
	Name    string
	Summary string                 // one line for docs and `busbar validate`
	New     func() ConnectorConfig // a fresh config with its defaults set
}

var (
	registryMu     sync.RWMutex
	connectorKinds = map[string]ConnectorKind{}
)

// RegisterConnector makes a kind of connector available to route files by
// name. It is meant to be called from init(); a duplicate or empty name is a
// programming error and panics at start-up, never at request time.
func RegisterConnector(k ConnectorKind) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if k.Name == "" || k.New == nil {
		panic("bus: RegisterConnector: empty name or constructor")
	}
	if _, dup := connectorKinds[k.Name]; dup {
		panic(fmt.Sprintf("bus: connector kind %q registered twice", k.Name))
	}
	connectorKinds[k.Name] = k
}

// LookupConnector returns the registered kind with that name.
func LookupConnector(name string) (ConnectorKind, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	k, ok := connectorKinds[name]
	return k, ok
}

// ConnectorKinds lists the registered kinds, sorted by name.
func ConnectorKinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(connectorKinds))
	for n := range connectorKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
