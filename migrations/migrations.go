// Package migrations holds the versioned SQL schema, one folder per dialect, embedded
// into the binaries and run by goose. Both dialects must describe the same tables,
// columns and unique keys; a test in app compares them.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migrations of one dialect ("mysql" or "sqlite").
func FS(dialect string) (fs.FS, error) {
	return fs.Sub(files, dialect)
}
