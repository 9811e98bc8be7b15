package routes

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads current's configuration directory whenever a file Busbar
// reads there changes, until ctx ends. A good load is handed to apply; a
// broken one to reject, and the routes already serving stay as they are.
//
// Only the files a load reads count: those the last load read (maps,
// tables, WSDLs, certificates, ${file:…}) and the *.yaml files its scan
// would find. Anything else written in the directory — a log file, a test
// case, an editor's backup — must not reload the routes: a log written
// there once caused several reloads a second. Every load takes opts.
//
// Editors save by writing a temporary file and renaming it, and often touch
// a file several times in a row, so changes are gathered for a short quiet
// period before one reload.
//
// Connectors whose configuration did not change keep their state (breakers,
// in-flight counts, idle connections) across reloads: each reload reuses
// those of the one before, starting with current.
func Watch(ctx context.Context, current *Config, apply func(*Config), reject func(error), opts ...Option) error {
	dir, prev := current.Dir, current
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := watchTree(w, dir); err != nil {
		return err
	}
	// The files of the last good load stay watched after a failed one (its
	// fix may be to one of them), together with what the failed one read.
	good := current.read
	reads := watchSet{root: absPath(dir), read: good}
	const quiet = 200 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				_ = watchTree(w, ev.Name) // a new folder: watch it too (fails harmlessly on files)
			}
			if reads.relevant(ev.Name) {
				timer.Reset(quiet)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			reject(err)
		case <-timer.C:
			cfg, read, err := load(dir, append(opts, Reusing(prev))...)
			if err != nil {
				reads.read = good.union(read)
				reject(err)
				continue
			}
			good, reads.read = read, read
			apply(cfg)
			prev = cfg
		}
	}
}

func watchTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		return w.Add(p)
	})
}

// fileSet is a set of absolute, clean file paths.
type fileSet map[string]bool

func (s fileSet) add(paths ...string) {
	for _, p := range paths {
		s[absPath(p)] = true
	}
}

func (s fileSet) union(o fileSet) fileSet {
	u := make(fileSet, len(s)+len(o))
	for p := range s {
		u[p] = true
	}
	for p := range o {
		u[p] = true
	}
	return u
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// watchSet decides which changes under the configuration directory are
// worth a reload.
type watchSet struct {
	root string  // the configuration directory, absolute
	read fileSet // files the load read
}

// relevant says whether a change to path (a file or a folder, created,
// written, removed or renamed) may change what a load reads.
func (s watchSet) relevant(path string) bool {
	abs := absPath(path)
	if s.read[abs] {
		return true
	}
	// A folder removed or renamed with files the load read.
	for p := range s.read {
		if strings.HasPrefix(p, abs+string(filepath.Separator)) {
			return true
		}
	}
	rel, err := filepath.Rel(s.root, abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return false
	}
	parts := strings.Split(rel, string(filepath.Separator))
	for _, d := range parts[:len(parts)-1] {
		if skipDir(d) {
			return false
		}
	}
	name := parts[len(parts)-1]
	if configName(name) {
		return true
	}
	// A folder moved in whole: the scan reads the configuration files in it.
	if st, err := os.Stat(abs); err == nil && st.IsDir() && !skipDir(name) {
		holds := false
		filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil || holds:
				return filepath.SkipAll
			case d.IsDir() && p != abs && skipDir(d.Name()):
				return filepath.SkipDir
			case !d.IsDir() && configName(d.Name()):
				holds = true
			}
			return nil
		})
		return holds
	}
	return false
}
