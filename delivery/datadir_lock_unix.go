//go:build unix

package delivery

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir makes sure one process at a time runs an embedded server on
// a data directory: the NATS server takes no lock of its own, and two
// writers would corrupt the file store. The kernel drops the lock when
// the process dies, so a crash never leaves the directory locked.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "busbar.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("delivery: data dir %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("delivery: data dir %q is in use by another Busbar process: %w", dir, err)
	}
	return f, nil
}
