//go:build !unix

package app

import "context"

// lockFile locks nothing where flock(2) is missing: there, two processes must not
// migrate one new SQLite file at once.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
