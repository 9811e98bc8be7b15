package routetest

import (
	"errors"

	"github.com/busbar/busbar/routes"
)

// Check decodes the test files of a configuration directory (its
// tests/*.yaml and *.yml) without running them, for `busbar validate`: every
// problem of every file, each at its file:line:col, as routes.Errors. A
// directory without tests has none.
func Check(dir string) error {
	var all routes.Errors
	for _, path := range testFilesIn(dir) {
		all = append(all, checkFile(path)...)
	}
	if len(all) == 0 {
		return nil
	}
	return all.Sorted()
}

func checkFile(path string) routes.Errors {
	var spec File
	root, err := routes.DecodeFile(path, &spec)
	var errs routes.Errors
	var one *routes.Error
	switch {
	case errors.As(err, &errs):
	case errors.As(err, &one):
		errs = routes.Errors{one}
	case err != nil:
		errs = routes.Errors{{File: path, Msg: err.Error()}}
	}
	if root == nil {
		return errs
	}
	pos := casePositions(root)
	for i := range spec.Cases {
		c := &spec.Cases[i]
		for _, p := range c.problems() {
			e := &routes.Error{File: path, Kind: "case", Name: c.Name, Msg: p}
			if i < len(pos) {
				e.Line, e.Col = pos[i].line, pos[i].col
			}
			errs = append(errs, e)
		}
	}
	return errs
}
