package routes

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the configuration directory whenever a file in it changes,
// until ctx ends. A good load is handed to apply; a broken one to reject,
// and the routes already serving stay as they are.
//
// Editors save by writing a temporary file and renaming it, and often touch
// a file several times in a row, so changes are gathered for a short quiet
// period before one reload.
//
// opts are Load's; with Reusing(the configuration serving at the start),
// connectors whose configuration did not change keep their state across
// reloads, each reload reusing those of the one before.
func Watch(ctx context.Context, dir string, apply func(*Config), reject func(error), opts ...Option) error {
	var o options
	for _, f := range opts {
		f(&o)
	}
	prev := o.reuse
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := watchTree(w, dir); err != nil {
		return err
	}
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
			if strings.HasPrefix(filepath.Base(ev.Name), ".") {
				continue // editor swap files
			}
			if ev.Has(fsnotify.Create) {
				_ = watchTree(w, ev.Name) // a new folder: watch it too (fails harmlessly on files)
			}
			timer.Reset(quiet)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			reject(err)
		case <-timer.C:
			cfg, err := Load(dir, append(opts, Reusing(prev))...)
			if err != nil {
				reject(err)
				continue
			}
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
