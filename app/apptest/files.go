package apptest

import (
	"os"
	"testing"
)

// Files lists the names in a folder, for tests that a write left nothing beside its file.
func Files(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
