//go:build !unix

package delivery

import "os"

// lockDataDir is a no-op where flock is not available: run one Busbar
// process per data directory.
func lockDataDir(dir string) (*os.File, error) { return nil, nil }
